"""`python -m launch.train` from a checkout: the `tf-mtl-train` command (`tf_mtl.cli.train`)."""

from tf_mtl.cli.train import run

if __name__ == "__main__":
    run()
