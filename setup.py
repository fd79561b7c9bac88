from setuptools import find_packages, setup

setup(
    name="tf_mtl",
    version="0.1.0",
    description=(
        "Multi-task learning research on Keras 3 / TensorFlow 2: transference "
        "(inter-task affinity), task grouping, IT-MTL, parameter partitioning."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    # The lowest versions the whole test suite was run and passed on: TF 2.16.1 with
    # Keras 3.10 and 3.15, tensorflow-datasets 4.9.3, ml_collections 1.0 (Python 3.11).
    # Older Keras gives wrong metrics or losses under tf.distribute (losses unscaled
    # before 3.8, metric variables not synchronized on read before 3.10).
    python_requires=">=3.11",
    # Only tf_mtl is installed: launch/ and configs/ stay in the checkout
    # (python -m launch.train from its root); installed commands are below.
    packages=find_packages(include=["tf_mtl", "tf_mtl.*"]),
    # 002's released losses and the Taskonomy building lists (data read at run time).
    package_data={"tf_mtl.grouping": ["data/*"], "tf_mtl.data": ["taskonomy_buildings/*"]},
    entry_points={"console_scripts": [
        "tf-mtl-train=tf_mtl.cli.train:run",
        "tf-mtl-group=tf_mtl.cli.group:run",
        "tf-mtl-benchmark=tf_mtl.cli.benchmark:run",
        "tf-mtl-interference=tf_mtl.cli.interference:run",
        "tf-mtl-pairs=tf_mtl.cli.pairs:run",
        "tf-mtl-evaluate-grouping=tf_mtl.cli.evaluate_grouping:run",
        "tf-mtl-compare-groupings=tf_mtl.cli.compare_groupings:run",
        "tf-mtl-compare=tf_mtl.cli.compare:run",
        "tf-mtl-metaworld=tf_mtl.cli.metaworld:run",
        "tf-mtl-standley=tf_mtl.cli.standley:run",
    ]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.10",
        "tensorflow-datasets>=4.9.3",
        # TFDS's download-and-prepare path imports it (dataset_builder.py) but TFDS declares
        # it only for Python < 3.9: without it every loader fails before downloading.
        "importlib_resources",
        # The fail-fast probe of tf_mtl.data.sources (TFDS also downloads with it).
        "requests",
        # 1.21 needs protobuf>=6.31.1 without declaring it; TF 2.16-2.19 cap protobuf below.
        "tensorflow-metadata<1.21",
        "numpy",
        "absl-py",
        "ml_collections>=1.0",
        # TensorBoard logging is on by default (config.tensorboard); TensorFlow 2.21 no
        # longer installs it, and tf.summary without it fails after the first epoch.
        "tensorboard",
        # tf_mtl.data.sources reads TFDS's file paths with it (TFDS brings it today).
        "etils",
        # Task grouping for many tasks: HiGHS through scipy.optimize (grouping/scale_selection.py).
        "scipy",
    ],
    extras_require={
        "test": ["pytest", "pytest-xdist", "matplotlib",
                 # tests/interference/test_stats.py checks the t-test against SciPy.
                 "scipy",
                 # tests/test_docs.py builds the site: the "docs" tools below, same pins.
                 "mkdocs==1.6.1", "mkdocs-material==9.8.2", "mkdocstrings[python]==1.0.8",
                 "mkdocstrings-python==2.0.11", "griffelib==2.4.1",
                 # tests/rl/ steps the real Meta-World environments (the "rl" extra).
                 "metaworld>=3.0,<4"],
        # mkdocs build --strict (mkdocs.yml); docs/hooks.py draws the figures with matplotlib.
        "docs": ["mkdocs==1.6.1", "mkdocs-material==9.8.2", "mkdocstrings[python]==1.0.8",
                 "mkdocstrings-python==2.0.11", "griffelib==2.4.1", "matplotlib"],
        "plot": ["matplotlib"],
        # tf_mtl.rl: Meta-World v3 (brings MuJoCo's wheels and gymnasium; tried: 3.1.1).
        "rl": ["metaworld>=3.0,<4"],
        "gpu": ["tensorflow[and-cuda]>=2.16"],
    },
)
