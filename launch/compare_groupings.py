"""`python -m launch.compare_groupings` from a checkout: the `tf-mtl-compare-groupings` command
(`tf_mtl.cli.compare_groupings`)."""

from absl import app

from tf_mtl.cli.compare_groupings import main

if __name__ == "__main__":
    app.run(main)
