"""`python -m launch.evaluate_grouping` from a checkout: the `tf-mtl-evaluate-grouping` command
(`tf_mtl.cli.evaluate_grouping`)."""

from absl import app

from tf_mtl.cli.evaluate_grouping import main

if __name__ == "__main__":
    app.run(main)
