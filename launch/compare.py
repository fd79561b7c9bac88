"""`python -m launch.compare` from a checkout: the `tf-mtl-compare` command (`tf_mtl.cli.compare`)."""

from absl import app

from tf_mtl.cli.compare import main

if __name__ == "__main__":
    app.run(main)
