"""`python -m launch.pairs` from a checkout: the `tf-mtl-pairs` command (`tf_mtl.cli.pairs`)."""

from tf_mtl.cli.pairs import run

if __name__ == "__main__":
    run()
