"""`python -m launch.metaworld` from a checkout: the `tf-mtl-metaworld` command (`tf_mtl.cli.metaworld`)."""

from tf_mtl.cli.metaworld import run

if __name__ == "__main__":
    run()
