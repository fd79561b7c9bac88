"""`python -m launch.train` from a checkout: the `tf-mtl-train` command (`tf_mtl.cli.train`)."""

from absl import app

from tf_mtl.cli.train import main

if __name__ == "__main__":
    app.run(main)
