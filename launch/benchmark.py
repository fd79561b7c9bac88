"""`python -m launch.benchmark` from a checkout: the `tf-mtl-benchmark` command (`tf_mtl.cli.benchmark`)."""

from absl import app

from tf_mtl.cli.benchmark import main

if __name__ == "__main__":
    app.run(main)
