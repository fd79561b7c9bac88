"""Where the TFDS datasets come from: download, files placed by hand, and errors that say how.

Every TFDS loader of ``tf_mtl.data`` reads its dataset through ``load``, which
runs TFDS's own builder (``celeb_a``, ``mnist``, ``fashion_mnist``,
``movielens``) once to prepare the data in ``data_dir``, then reads it:

* **Download.** Before handing over to TFDS, the URLs of the files TFDS has
  to fetch are tried once, without retries, for ``PROBE_TIMEOUT`` seconds.
  Offline, TFDS would retry each file for minutes and end in a bare
  ``ConnectionError``; the probe fails at once and its message names the files,
  their URLs and where to put them by hand. ``retries=True`` skips the probe
  and keeps TFDS's retries (flaky links). Files already in TFDS's download
  cache (``cached``) are not fetched, so not probed: a copied
  ``downloads/`` folder prepares offline. Only a failure to download is
  reported as one; other errors while preparing pass through unchanged.
* **Files placed by hand** in ``<data_dir>/downloads/manual/<builder>/``
  (``manual_dir``) under the names TFDS's checksum registry gives them
  (``source_files``). One folder per builder, because MNIST and Fashion-MNIST
  use the same file names. TFDS picks them up with no network; their SHA-256
  is first compared with the originals' in TFDS's registry.
* **Copies that are not byte-identical** (a mirror that re-packed them, the
  tiny files of the tests): TFDS refuses them. ``verify_checksums=False``
  places them (hard links) in a private download folder,
  ``<data_dir>/tf_mtl-staging-*/``, under the names TFDS gives the originals,
  and has TFDS prepare with that folder as its download folder; TFDS reuses
  cached downloads without hashing them again. The folder is removed after
  preparing. TFDS's shared cache ``<data_dir>/downloads/`` is never written:
  were the copies there, a killed run would leave them for later runs (with
  ``verify_checksums=True`` too) to take as the originals, and runs sharing
  ``data_dir`` would overwrite each other's. Links that earlier versions
  staged there (``.INFO`` tagged ``staged_by``) are removed when preparing.
  (TFDS's own switch, ``DownloadConfig(register_checksums=True)``, would
  instead rewrite the checksum file inside the installed TFDS package.)

Files in the manual folder are checked before TFDS sees them (``manual_files``):
a partial folder names the missing files, a misnamed file the name expected,
a file in the wrong format what the builder expects (``FORMATS``); CelebA files
that disagree on an image are named when TFDS's builder stumbles on it.
"""

import contextlib
import json
import os
import shutil
import tempfile

from tf_mtl.data import source_formats

PROBE_TIMEOUT = 3.0  # Seconds: a reachable server answers a HEAD request well within it.
STAGING_PREFIX = "tf_mtl-staging-"  # <data_dir>/tf_mtl-staging-*/: see _staged.
FORMATS = source_formats.FORMATS


def data_root(data_dir):
    """The TFDS data directory ``data_dir`` stands for (TFDS's default when None)."""
    default = os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")
    return os.path.abspath(os.path.expanduser(data_dir or default))


def manual_dir(name, data_dir):
    """``<data_dir>/downloads/manual/<builder>/``: where files placed by hand go."""
    return os.path.join(data_root(data_dir), "downloads", "manual", name.split("/")[0])


def source_files(name):
    """``{file name: (url, size in bytes)}`` TFDS's builder ``name`` downloads.

    Read from TFDS's own checksum registry (with ``name`` such as
    ``"movielens/1m-ratings"`` only its config's files), so names and URLs are
    those TFDS looks for.
    """
    return {info.filename: (url, int(info.size)) for url, info in _url_infos(name).items()}


def _url_infos(name):
    """TFDS's ``{url: UrlInfo}`` for the files of builder (and config) ``name``."""
    import tensorflow_datasets as tfds
    builder, _, config = name.partition("/")
    cls = tfds.builder_cls(builder)
    infos = dict(cls.url_infos or {})
    if config:
        url = cls.builder_configs[config].download_url
        infos = {url: infos[url]}
    return infos


def cached(name, data_dir):
    """Names of the files of ``name`` that TFDS's download cache in ``data_dir`` holds.

    TFDS reads these instead of downloading them (without hashing them again).
    The test is TFDS's own (the file and its ``.INFO``) at the places the
    installed TFDS looks: ``downloads/<builder>/`` (where TFDS 4.9.10
    downloads; 4.9.3 never looks there) and ``downloads/`` (TFDS 4.9.3's only
    place, still read by 4.9.10). Downloads of files with registered checksums
    are cached under their checksum's name.
    """
    import inspect
    from etils import epath
    from tensorflow_datasets.core.download import download_manager
    from tensorflow_datasets.core.download import resource as resource_lib
    is_cached = (getattr(resource_lib, "is_locally_cached", None)          # TFDS 4.9.10.
                 or resource_lib.Resource.exists_locally)                 # TFDS 4.9.3.
    downloads = epath.Path(data_root(data_dir)) / "downloads"
    folders = [downloads]
    # TFDS with a per-dataset download folder falls back to downloads/ in "legacy mode".
    if "legacy_mode" in inspect.signature(download_manager.DownloadManager._get_dl_path).parameters:
        folders.insert(0, downloads / name.split("/")[0])
    return {info.filename for url, info in _url_infos(name).items()
            if any(is_cached(folder / resource_lib.get_dl_fname(url, info.checksum))
                   for folder in folders)}


def _listing(name, data_dir):
    return "; ".join(f"{f} ({size / 1e6:.1f} MB) from {url}"
                     for f, (url, size) in sorted(source_files(name).items()))


def how_to_place(name, data_dir):
    """The sentence every error ends with: which files, from where, where to put them."""
    return (f"Download these files yourself: {_listing(name, data_dir)}. Put them, with exactly "
            f"these names, in {manual_dir(name, data_dir)}/ and call again with data_dir="
            f"{data_root(data_dir)!r}: TFDS then prepares the dataset from them without network.")


def check_writable(data_dir):
    """``data_dir`` must take new files: TFDS writes downloads and the prepared data there."""
    root = data_root(data_dir)
    try:
        os.makedirs(root, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as e:
        raise ValueError(
            f"`data_dir` is not writable ({type(e).__name__}: {e}); TFDS writes the downloads and "
            f"the prepared dataset there. Pass a writable folder. Received: data_dir={data_dir!r}"
        ) from e


def manual_files(name, data_dir):
    """Paths ``{file name: path}`` of a complete manual folder, or None when there is none.

    Raises ``ValueError`` for a partial folder (names the missing files and any
    misnamed ones) and for a file in the wrong format (names it and the format
    expected).
    """
    folder = manual_dir(name, data_dir)
    expected = source_files(name)
    present = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    if not present:
        parent = os.path.dirname(folder)
        # Earlier messages (and TFDS's default) named the shared folder itself.
        strays = sorted(set(expected) & set(os.listdir(parent))) if os.path.isdir(parent) else []
        if strays:
            raise ValueError(f"Files for TFDS '{name}' lie in {parent}/: {strays}. Move them into "
                             f"{folder}/ (one folder per dataset: MNIST and Fashion-MNIST share "
                             f"file names). Received: data_dir={data_dir!r}")
        return None
    missing = sorted(set(expected) - set(present))
    if missing:
        import difflib
        odd = [f"{f!r} (expected {difflib.get_close_matches(f, expected, 1, 0.5)[0]!r}?)"
               for f in present if f not in expected
               and difflib.get_close_matches(f, expected, 1, 0.5)]
        raise ValueError(
            f"The manual folder {folder}/ is missing file(s) TFDS '{name}' needs: "
            + ", ".join(f"{f} ({expected[f][1] / 1e6:.1f} MB, {expected[f][0]})" for f in missing)
            + (f". Misnamed: {', '.join(odd)}" if odd else "")
            + f". Received: data_dir={data_dir!r} holding {present}")
    paths = {f: os.path.join(folder, f) for f in expected}
    for f, path in paths.items():
        problem = source_formats.check(f, path)
        if problem:
            raise ValueError(
                f"{path} is not in the format TFDS '{name}' reads: {problem}. Expected "
                f"{FORMATS[f][0]}. Received: data_dir={data_dir!r}")
    return paths


def _staged(name, data_dir, paths):
    """A private download folder holding ``paths`` where TFDS looks for cached originals.

    Private: TFDS's shared cache ``<data_dir>/downloads/`` never holds the
    copies (module doc). Inside ``data_dir``: on the manual folder's file
    system, so hard links work. Its ``manual/`` is empty because TFDS reads a
    manual folder before its cache, and verifies what it finds there.
    """
    from tensorflow_datasets.core.download import resource as resource_lib
    folder = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=data_root(data_dir))
    try:
        os.mkdir(os.path.join(folder, "manual"))
        for url, info in _url_infos(name).items():
            # The legacy cache location (no dataset sub-folder): every TFDS 4.9 release checks it.
            link = os.path.join(folder, resource_lib.get_dl_fname(url, info.checksum))
            try:
                os.link(paths[info.filename], link)
            except OSError:  # Another file system, or no hard links: copy.
                shutil.copyfile(paths[info.filename], link)
            with open(link + ".INFO", "w") as f:
                json.dump({"urls": [url], "original_fname": info.filename}, f)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def _remove_staged_by_earlier_versions(data_dir):
    """Removes the copies earlier versions linked into TFDS's shared cache, and their extractions.

    A run killed while preparing left them there, under the originals' names:
    TFDS would take them for the originals.
    """
    downloads = os.path.join(data_root(data_dir), "downloads")
    entries = os.listdir(downloads) if os.path.isdir(downloads) else []
    for entry in entries:
        info = os.path.join(downloads, entry)
        if not entry.endswith(".INFO"):
            continue
        try:
            with open(info) as f:
                staged = "staged_by" in json.load(f)
        except (OSError, ValueError):  # Unreadable or not JSON: not one of ours.
            continue
        if not staged:
            continue
        link = info[:-len(".INFO")]
        for path in (link, info):
            if os.path.lexists(path):
                os.remove(path)
        extracted = os.path.join(downloads, "extracted")
        if os.path.isdir(extracted):  # TFDS names an extraction '<METHOD>.<download name>'.
            for old in os.listdir(extracted):
                if old.split(".", 1)[-1] == os.path.basename(link):
                    target = os.path.join(extracted, old)
                    (shutil.rmtree if os.path.isdir(target) else os.remove)(target)


def probe(name, data_dir, files=None, timeout=PROBE_TIMEOUT):
    """One HEAD request per URL of ``files`` (default all), no retries; ``ConnectionError``
    naming them if unreachable."""
    import requests
    for f, (url, _) in sorted(source_files(name).items()):
        if files is not None and f not in files:
            continue
        try:
            requests.head(url, timeout=timeout, allow_redirects=False)
        except requests.RequestException as e:
            raise ConnectionError(
                f"Cannot reach the source of TFDS '{name}' within {timeout:g} s: {url} "
                f"({type(e).__name__}: {e}). {how_to_place(name, data_dir)} On a slow or "
                "flaky network pass retries=True to keep TFDS's own retries instead.") from e


def _mismatches(name, paths):
    from tensorflow_datasets.core.download import checksums
    import tensorflow_datasets as tfds
    expected = {i.filename: i for i in tfds.builder_cls(name.split("/")[0]).url_infos.values()}
    out = []
    for f, path in sorted(paths.items()):
        got = checksums.compute_url_info(path)
        if got != expected[f]:
            out.append(f"{path} (sha256 {got.checksum}, {int(got.size)} bytes; the original: "
                       f"sha256 {expected[f].checksum}, {int(expected[f].size)} bytes)")
    return out


def prepare(name, data_dir=None, *, verify_checksums=True, retries=False,
            max_examples_per_split=None):
    """Runs TFDS's builder ``name`` to prepare the data in ``data_dir``, as the module doc says.

    ``max_examples_per_split`` is TFDS's own testing option: write only that
    many examples per split (the whole files are still read).
    """
    with _without_gcs():
        _prepare(name, data_dir, verify_checksums, retries, max_examples_per_split)


def _prepare(name, data_dir, verify_checksums, retries, max_examples_per_split):
    import requests
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download import download_manager
    check_writable(data_dir)
    _remove_staged_by_earlier_versions(data_dir)
    paths = manual_files(name, data_dir)
    # What TFDS has to fetch: nothing placed by hand or already in its download cache.
    to_download = [] if paths else sorted(set(source_files(name)) - cached(name, data_dir))
    if to_download and not retries:
        probe(name, data_dir, to_download)
    # Checked here, not left to TFDS: TFDS 4.9.3 takes manual files unhashed (4.9.10 hashes).
    bad = _mismatches(name, paths) if paths and verify_checksums else []
    if bad:
        raise ValueError(
            f"File(s) placed by hand for TFDS '{name}' are not the originals: {'; '.join(bad)}. "
            "If they are copies you trust (a mirror that re-packed them), pass "
            f"verify_checksums=False. Received: data_dir={data_dir!r}")
    staging = _staged(name, data_dir, paths) if paths and not verify_checksums else None
    config = tfds.download.DownloadConfig(
        manual_dir=os.path.join(staging, "manual") if staging else manual_dir(name, data_dir),
        try_download_gcs=False, max_examples_per_split=max_examples_per_split)
    try:
        # download_dir=None: TFDS's own, <data_dir>/downloads/.
        tfds.builder(name, data_dir=data_dir).download_and_prepare(download_dir=staging,
                                                                   download_config=config)
    except download_manager.NonMatchingChecksumError as e:
        if not to_download:
            raise
        raise RuntimeError(f"TFDS '{name}' downloaded file(s) that are not the originals "
                           f"({e}); Google Drive answers a quota page so. "
                           f"{how_to_place(name, data_dir)}") from e
    except (tfds.download.DownloadError, requests.RequestException, ConnectionError) as e:
        if not to_download:
            raise
        raise RuntimeError(f"TFDS '{name}' could not download {', '.join(to_download)} "
                           f"({type(e).__name__}: {e}). {how_to_place(name, data_dir)}") from e
    except KeyError as e:
        # TFDS's CelebA builder looks every image of one list up in the others.
        problem = source_formats.celeba_disagreement(e.args[0] if e.args else None, paths or {})
        if not problem:
            raise
        raise ValueError(
            f"The CelebA files in {manual_dir(name, data_dir)}/ disagree: {problem}. TFDS's "
            "builder needs every image of list_eval_partition.txt in the zip and in the three "
            "other lists: take all five files from one release. "
            f"Received: data_dir={data_dir!r}") from e
    finally:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _without_gcs():
    """TFDS 4.9.10 leaves its GCS bucket alone by default; 4.9.3 reads dataset metadata from it
    when a builder is made, and behind a dead proxy that retries for minutes before any
    download starts. The loaders need nothing from the bucket: switch it off as 4.9.10 does."""
    from tensorflow_datasets.core.utils import gcs_utils
    before = getattr(gcs_utils, "_is_gcs_disabled", True)
    gcs_utils._is_gcs_disabled = True
    try:
        yield
    finally:
        gcs_utils._is_gcs_disabled = before


def load(name, split, *, data_dir=None, download=True, verify_checksums=True, retries=False,
         **load_kwargs):
    """``tfds.load(name, split=split, ...)``, preparing the data first when it is missing."""
    with _without_gcs():
        return _load(name, split, data_dir, download, verify_checksums, retries, load_kwargs)


def _load(name, split, data_dir, download, verify_checksums, retries, load_kwargs):
    import tensorflow_datasets as tfds
    for arg, value in (("verify_checksums", verify_checksums), ("retries", retries),
                       ("download", download)):
        if not isinstance(value, bool):
            raise ValueError(f"`{arg}` must be True or False. Received: {arg}={value!r}")
    # Under tfds.testing.mock_data TFDS prepares nothing (random examples): no checks apply.
    mocked = tfds.core.DatasetBuilder.download_and_prepare.__module__.startswith(
        "tensorflow_datasets.testing")
    if not mocked and not tfds.builder(name, data_dir=data_dir).is_prepared():
        if not download:
            raise RuntimeError(f"TFDS '{name}' is not prepared in {data_root(data_dir)} and "
                               f"download=False. {how_to_place(name, data_dir)}")
        prepare(name, data_dir, verify_checksums=verify_checksums, retries=retries)
    return tfds.load(name, split=split, data_dir=data_dir, download=download, **load_kwargs)
