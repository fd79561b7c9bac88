"""`python -m launch.group` from a checkout: the `tf-mtl-group` command (`tf_mtl.cli.group`)."""

from tf_mtl.cli.group import run

if __name__ == "__main__":
    run()
