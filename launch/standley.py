"""`python -m launch.standley` from a checkout: the `tf-mtl-standley` command
(`tf_mtl.cli.standley`)."""

from tf_mtl.cli.standley import run

if __name__ == "__main__":
    run()
