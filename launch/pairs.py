"""`python -m launch.pairs` from a checkout: the `tf-mtl-pairs` command (`tf_mtl.cli.pairs`)."""

from absl import app

from tf_mtl.cli.pairs import main

if __name__ == "__main__":
    app.run(main)
