"""`python -m launch.interference` from a checkout (`tf_mtl.cli.interference`)."""

from tf_mtl.cli.interference import run

if __name__ == "__main__":
    run()
