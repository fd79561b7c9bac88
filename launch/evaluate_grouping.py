"""`python -m launch.evaluate_grouping` from a checkout: the `tf-mtl-evaluate-grouping` command
(`tf_mtl.cli.evaluate_grouping`)."""

from tf_mtl.cli.evaluate_grouping import run

if __name__ == "__main__":
    run()
