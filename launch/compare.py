"""`python -m launch.compare` from a checkout: the `tf-mtl-compare` command (`tf_mtl.cli.compare`)."""

from tf_mtl.cli.compare import run

if __name__ == "__main__":
    run()
