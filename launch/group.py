"""`python -m launch.group` from a checkout: the `tf-mtl-group` command (`tf_mtl.cli.group`)."""

from absl import app

from tf_mtl.cli.group import main

if __name__ == "__main__":
    app.run(main)
