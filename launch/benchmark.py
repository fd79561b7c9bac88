"""`python -m launch.benchmark` from a checkout: the `tf-mtl-benchmark` command (`tf_mtl.cli.benchmark`)."""

from tf_mtl.cli.benchmark import run

if __name__ == "__main__":
    run()
