"""`python -m launch.compare_groupings` from a checkout: the `tf-mtl-compare-groupings` command
(`tf_mtl.cli.compare_groupings`)."""

from tf_mtl.cli.compare_groupings import run

if __name__ == "__main__":
    run()
