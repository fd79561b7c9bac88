"""`python -m launch.interference` from a checkout (`tf_mtl.cli.interference`)."""

from absl import app

from tf_mtl.cli.interference import main

if __name__ == "__main__":
    app.run(main)
