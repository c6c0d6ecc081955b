"""The batch transform worker (SageMaker Batch Transform, Vertex BatchPredictionJob): scores a Parquet file, a
directory of Parquet files or a CSV file with an MLflow model into Parquet parts, in bounded memory.

    python -m strato.batch.worker --model DIR --input PATH --output DIR [--batch-size 1024] [--workers 1]
        [--worker-index 0] [--join-input none|all|COL,COL] [--input-format auto|parquet|csv]
        [--prediction-column prediction] [--cache DIR (where a model URI, rather than a DIR, is downloaded)]

Parts. Part k is rows [k*batch_size, (k+1)*batch_size) of the input in order (a directory's files by sorted path),
the same rows in every run and every worker; worker I of N scores the parts with k % N == I. The input is read in
record batches of at most batch_size rows (Parquet row groups holding none of this worker's parts are skipped),
coerced to the model's signature with the serving codec's checks (CSV is read as text, so a value that does not
parse fails only its row, naming it; the joined and schema-less columns take the types inferred from the first
block), and each part predicted in one call. When that call fails the part is bisected down to the failing rows:
errors/part-K.jsonl gets ``{"row": n, "error": ...}`` for each, part-K.parquet a null prediction, the other rows
are scored. No bad row stops the job. part-K.parquet holds ``row`` (the input row number), the prediction (a 1-D
result as --prediction-column, a DataFrame's columns, a 2-D array's as prediction_0..n) and, with --join-input,
input columns (``input_NAME`` where a name is taken).

Exactly once. part-K.parquet appears only complete: it is written to a temporary file in OUTPUT and renamed
over its final name (``os.replace``, atomic within a file system); errors/part-K.jsonl is put in place
the same way (or a stale one removed) *before* it. A worker skips every part whose final file exists and removes
its own leftover temporary files, so after a kill at any instant and a restart every part, hence every input row,
is in the output exactly once, with a matching errors file. (A killed process leaves its written data in the
page cache, so no fsync is needed for that; fsync per part would cost ~7% of the throughput and still not make
a power loss safe without syncing the directory too.) _progress/job.json records the batch size and row
count: a restart that would cut other parts (another batch size, a changed input) is refused.

Progress: after each part, ``[strato] progress {json}`` on stdout and _progress/worker-I.json (atomic); at the end
``[strato] batch-done {summary}``. A user error (no such input, a model that does not load, an unknown format)
prints ``[strato] failure-reason "..."`` and exits 2.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from strato.errors import InvalidArgument, StratoError
from strato.serving.codec import InputSchema, _assemble, _column, _present, _tensor
from strato.serving.model import LoadedModel, cached_model_dir

__all__ = ["Summary", "main", "merge_outputs", "score_parts"]

FORMATS = ("auto", "parquet", "csv")
_PART = re.compile(r"^part-(\d+)\.parquet$")
_TEMP = re.compile(r"^\.(part|worker)-(\d+)\..*\.tmp$")
_ARROW = {"double": pa.float64(), "float": pa.float32(), "long": pa.int64(), "integer": pa.int32()}
Progress = Callable[[dict[str, Any]], None]


@dataclass
class Summary:
    workers: int
    worker_index: int
    parts_total: int  # this worker's parts
    parts_done: int  # including those an earlier run finished
    parts_skipped: int  # found finished at the start
    rows_total: int  # in this worker's parts
    rows_done: int
    rows_scored: int  # by this run
    bad_rows: int
    seconds: float
    rows_per_second: float


@dataclass
class _Source:
    path: Path
    format: str
    rows: int
    columns: list[str]
    files: list[tuple[Path, list[int]]]  # Parquet: each file's row-group sizes
    csv_types: pa.Schema | None = None  # CSV: the types inferred from the first block (read as text)


# ---- input ------------------------------------------------------------------------------------------------


def _delta_files(path: Path, version: int | None) -> list[Path]:
    """The data files of a Delta table at ``version`` (its latest when None), in a fixed order."""
    from deltalake import DeltaTable

    try:
        table = DeltaTable(str(path), version=version)
    except Exception as exc:
        raise InvalidArgument(f"cannot read the Delta table {path} at version {version}: {exc}") from None
    return sorted((Path(uri.removeprefix("file://")) for uri in table.file_uris()), key=str)


def _open_source(path: Path, fmt: str, version: int | None = None) -> _Source:
    if not path.exists():
        raise InvalidArgument(f"input {path} does not exist; pass --input a Parquet file, a directory of them or a CSV")
    if fmt not in FORMATS:
        raise InvalidArgument(f"unknown input format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = _sniff(path)
    if fmt == "csv":
        if path.is_dir():
            raise InvalidArgument(f"{path} is a directory; CSV input is one file (a directory must hold Parquet)")
        try:
            with pacsv.open_csv(path) as reader:  # infers the column types from the first block
                types = reader.schema
        except (pa.ArrowException, OSError) as exc:
            raise InvalidArgument(f"cannot read {path} as CSV with a header row: {exc}") from None
        return _Source(path, "csv", _count_csv_rows(path), types.names, [], types)
    files = [path]
    if (path / "_delta_log").is_dir():  # a Delta table: the files of one version, not every file left behind
        files = _delta_files(path, version)
        if not files:
            raise InvalidArgument(f"the Delta table {path} holds no rows")
    elif path.is_dir():  # Spark/Hive layout: _SUCCESS, .crc and other hidden files are not data
        found = (p for p in path.rglob("*") if p.is_file())
        files = sorted((p for p in found if not re.search(r"(^|/)[._]", p.relative_to(path).as_posix())), key=str)
        if not files:
            raise InvalidArgument(f"{path} holds no Parquet files")
    groups = []
    for f in files:
        try:
            meta = pq.read_metadata(f)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidArgument(f"{f} is not a readable Parquet file ({exc}); remove it or fix --input") from None
        groups.append((f, [meta.row_group(j).num_rows for j in range(meta.num_row_groups)]))
    columns = pq.read_schema(files[0]).names
    return _Source(path, "parquet", sum(sum(g) for _, g in groups), columns, groups)


def _sniff(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if path.is_dir() or suffixes[-1:] in ([".parquet"], [".pq"], [".parq"]):
        return "parquet"
    if ".csv" in suffixes:
        return "csv"
    with open(path, "rb") as f:
        if f.read(4) == b"PAR1":
            return "parquet"
    raise InvalidArgument(f"cannot tell the format of {path} from its name; pass --input-format parquet or csv")


def _count_csv_rows(path: Path) -> int:
    """Lines after the header (for progress: a quoted field spanning lines counts more than once)."""
    lines, last = 0, b"\n"
    with pa.input_stream(str(path)) as f:  # decompresses .gz and the like, as the CSV reader does
        while chunk := f.read(1 << 20):
            lines, last = lines + chunk.count(b"\n"), chunk[-1:]
    return max(0, lines + (last != b"\n") - 1)


def _batches(src: _Source, batch_size: int, wanted: Callable[[int, int], bool]) -> Iterator[tuple[int, Any]]:
    """(first row, record batch) in input order; Parquet row groups ``wanted`` rejects are not read."""
    try:
        if src.csv_types is not None:  # read as text: one bad value must not stop the reader
            text = pacsv.ConvertOptions(column_types=dict.fromkeys(src.columns, pa.string()), strings_can_be_null=True)
            start = 0
            with pacsv.open_csv(src.path, convert_options=text) as reader:
                for batch in reader:
                    yield start, batch
                    start += batch.num_rows
            return
        start = 0
        for path, groups in src.files:
            file = None
            for j, n in enumerate(groups):
                if n and wanted(start, start + n):
                    file = file or pq.ParquetFile(path)
                    at = start
                    for batch in file.iter_batches(batch_size=batch_size, row_groups=[j]):
                        yield at, batch
                        at += batch.num_rows
                start += n
            if file is not None:
                file.close()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidArgument(f"cannot read {src.path}: {exc}; fix it (the parts written so far are kept)") from None


def _parts(batches: Iterator[tuple[int, Any]], size: int, wanted: Callable[[int], bool]) -> Iterator[tuple[int, Any]]:
    """(k, table of part k's rows) for the wanted parts, from batches of any size."""
    k_open, pieces = -1, list[Any]()
    for start, batch in batches:
        pos = 0
        while pos < batch.num_rows:
            row = start + pos
            k = row // size
            take = min(batch.num_rows - pos, (k + 1) * size - row)
            if wanted(k):  # a wanted part's rows are never skipped, so they arrive together
                k_open = k
                pieces.append(pa.Table.from_batches([batch.slice(pos, take)]))
                if row + take == (k + 1) * size:
                    yield k, _concat(pieces)
                    pieces = []
            pos += take
    if pieces:
        yield k_open, _concat(pieces)  # the last part, shorter


def _concat(tables: list[Any]) -> Any:
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")


def _lenient_cast(column: Any, to: Any) -> Any:
    """CSV text as the inferred type; a value that does not parse is null (its row is reported if the model
    needs it)."""
    if pa.types.is_string(to) or pa.types.is_null(to):
        return column
    try:
        return column.cast(to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([_cast_one(v, to) for v in column.to_pylist()], to)


def _cast_one(value: str | None, to: Any) -> Any:
    try:
        return None if value is None else pa.scalar(value).cast(to).as_py()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


# ---- scoring ----------------------------------------------------------------------------------------------


def _as_table(predictions: Any, rows: int, name: str) -> Any:
    """Predictions as an Arrow table with one row per input row."""
    if isinstance(predictions, dict):
        predictions = pd.DataFrame(predictions)
    if isinstance(predictions, pd.DataFrame):
        frame = predictions.set_axis([str(c) for c in predictions.columns], axis=1)
        table = pa.Table.from_pandas(frame, preserve_index=False)
    else:
        values = predictions.to_numpy() if isinstance(predictions, pd.Series | pd.Index) else predictions
        try:
            arr = np.asarray(values)
        except ValueError:  # ragged lists
            arr = np.empty(len(values), dtype=object)
            arr[:] = list(values)
        if arr.ndim == 0:
            raise ValueError("the model returned one value, not one prediction per row")
        if arr.ndim == 1:
            table = pa.table({name: pa.array(arr, from_pandas=arr.dtype == object)})  # NaN there: missing
        elif arr.ndim == 2:
            table = pa.table({f"{name}_{j}": np.ascontiguousarray(arr[:, j]) for j in range(arr.shape[1])})
        else:  # one nested list per row
            table = pa.table({name: pa.array(arr.tolist())})
    if table.num_rows != rows:
        raise ValueError(f"the model returned {table.num_rows} predictions for {rows} rows")
    return table.replace_schema_metadata(None)


def _numpy(column: Any, kind: str) -> Any:
    if pa.types.is_string(column.type) and kind in _ARROW:  # CSV text: Arrow parses it fast, else the codec
        with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):  # names the value it cannot read
            column = column.cast(_ARROW[kind])
    return column.to_numpy()


def _message(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, StratoError) else f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 2000 else text[:1997] + "..."


class _Scorer:
    def __init__(self, model: Any, src: _Source, join: list[str], name: str):
        self.predict, self.schema = model.predict, model.schema
        self.src, self.join, self.name = src, join, name

    def _input(self, table: Any) -> Any:
        schema: InputSchema | None = self.schema
        if schema is None:
            return table.to_pandas()
        if schema.tensor_shape is not None:
            return _tensor(np.column_stack([c.to_numpy() for c in table.columns]), schema)
        present = _present(schema, set(table.column_names))
        data = {c: _column(c, kind, _numpy(table.column(c), kind)) for c, kind in present}
        return _assemble(data, schema, table.num_rows)

    def score(self, table: Any, first: int) -> tuple[Any, list[tuple[int, str]]]:
        """The output part for ``table`` (input rows from ``first``) and its bad rows (row, error)."""
        n, typed = table.num_rows, table
        if any(pa.types.is_dictionary(t) for t in table.schema.types):  # decoded: to_numpy misreads a slice's nulls
            plain = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
            table = typed = pa.table(plain, names=table.column_names)
        if self.src.csv_types is not None and (self.join or self.schema is None):
            casts = [_lenient_cast(table.column(j), f.type) for j, f in enumerate(self.src.csv_types)]
            typed = pa.table(casts, names=table.column_names)
        source = table if self.schema is not None else typed  # the codec reads CSV text, naming a bad value
        pieces: list[tuple[int, Any]] = []
        bad: list[tuple[int, str]] = []
        spans = [(0, n)]
        try:
            if self.schema is not None and self.schema.columns is not None:
                _present(self.schema, set(table.column_names))  # a missing column fails every row alike
        except InvalidArgument as exc:
            bad, spans = [(j, exc.message) for j in range(n)], []
        while spans:  # bisect a failing span down to its failing rows
            a, b = spans.pop()
            try:
                pieces.append((a, _as_table(self.predict(self._input(source.slice(a, b - a))), b - a, self.name)))
            except Exception as exc:
                if b - a == 1:
                    bad.append((a, _message(exc)))
                else:
                    spans += [((a + b) // 2, b), (a, (a + b) // 2)]
        if pieces and len(kinds := {t.schema for _, t in pieces}) > 1:  # rows the model answered differently
            try:
                pa.unify_schemas(list(kinds), promote_options="permissive")
            except (pa.ArrowTypeError, pa.ArrowInvalid):
                usual, kind = pieces[0][1].schema, lambda t: ", ".join(map(str, t.schema.types))
                bad += [(a + j, f"the model returned {kind(t)} here, {kind(pieces[0][1])} for the first rows")
                        for a, t in pieces if t.schema != usual for j in range(t.num_rows)]  # fmt: skip
                pieces = [(a, t) for a, t in pieces if t.schema == usual]
        out = _concat([t for _, t in pieces]) if pieces else pa.table({self.name: pa.nulls(0)})
        if bad:
            nulls = pa.Table.from_arrays([pa.nulls(len(bad), f.type) for f in out.schema], schema=out.schema)
            at = [np.arange(a, a + t.num_rows) for a, t in pieces] + [np.array([j for j, _ in bad])]
            out = pa.concat_tables([out, nulls]).take(np.argsort(np.concatenate(at), kind="stable"))
        names, columns = ["row", *out.column_names], [pa.array(np.arange(first, first + n, dtype=np.int64))]
        columns += out.columns
        for c in self.join:
            names.append(f"input_{c}" if c in names else c)
            columns.append(typed.column(c) if c in typed.column_names else pa.nulls(n))
        return pa.Table.from_arrays(columns, names=names), sorted((first + j, e) for j, e in bad)


# ---- output -----------------------------------------------------------------------------------------------


def _put(path: Path, content: bytes | Callable[[IO[bytes]], Any]) -> None:
    """Write ``path`` all or nothing: a temporary file beside it, then renamed over it."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as f:
            if isinstance(content, bytes):
                f.write(content)
            else:
                content(f)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _put_json(path: Path, data: Any) -> None:
    _put(path, json.dumps(data).encode())


def _finished(output: Path) -> dict[int, Path]:
    return {int(m.group(1)): p for p in output.glob("part-*.parquet") if (m := _PART.match(p.name))}


def merge_outputs(output_dir: str | Path) -> Any:
    """Every part of ``output_dir`` as one table, in part (so input row) order."""
    parts = sorted(_finished(Path(output_dir)).items())
    if not parts:
        raise InvalidArgument(f"{output_dir} holds no part files")
    return _concat([pq.read_table(p) for _, p in parts])


def _load_model(uri: str, cache: str | Path | None) -> LoadedModel:
    cache = Path(cache or os.environ.get("STRATO_MODEL_CACHE") or Path.home() / ".cache" / "strato" / "models")
    try:
        directory = cached_model_dir(uri, cache)
    except Exception as exc:
        raise InvalidArgument(f"cannot download the model {uri}: {_message(exc)}") from None
    if not (directory / "MLmodel").is_file():
        raise InvalidArgument(f"{directory} is not an MLflow model (no MLmodel file); pass --model its directory")
    try:
        return LoadedModel.load(directory, uri)
    except Exception as exc:
        raise InvalidArgument(f"cannot load the model in {directory}: {_message(exc)}") from None


def _resume(output: Path, manifest: dict[str, int], mine: Callable[[int], bool], worker_index: int) -> dict[int, Path]:
    """This worker's finished parts, after checking they cut the input as this run will and removing the
    temporary files a killed run of this worker left."""
    for folder in (output, output / "errors", output / "_progress"):
        folder.mkdir(parents=True, exist_ok=True)
    job = output / "_progress" / "job.json"
    if not job.exists():
        _put_json(job, manifest)
    elif (earlier := json.loads(job.read_text())) != manifest:
        raise InvalidArgument(f"{output} holds parts of another run ({earlier}, now {manifest}); "
                              "use the same --batch-size and input, or a new --output")  # fmt: skip
    for p in (p for folder in (output, output / "errors", output / "_progress") for p in folder.glob(".*.tmp")):
        if (m := _TEMP.match(p.name)) and (mine(int(m[2])) if m[1] == "part" else int(m[2]) == worker_index):
            p.unlink(missing_ok=True)
    return {k: p for k, p in _finished(output).items() if mine(k)}


def _write_part(output: Path, k: int, part: Any, bad: list[tuple[int, str]]) -> None:
    """The errors file first (or a stale one removed), then the part: each appears complete or not at all."""
    errors = output / "errors" / f"part-{k:05d}.jsonl"
    if bad:
        _put(errors, "".join(json.dumps({"row": r, "error": e}) + "\n" for r, e in bad).encode())
    else:
        errors.unlink(missing_ok=True)  # left by a run killed before it put this part in place
    _put(output / f"part-{k:05d}.parquet", functools.partial(pq.write_table, part))


def score_parts(
    model: Any,
    input_path: str | Path,
    output_dir: str | Path,
    *,
    batch_size: int = 1024,
    workers: int = 1,
    worker_index: int = 0,
    join: str | Sequence[str] = "none",
    input_format: str = "auto",
    prediction_column: str = "prediction",
    on_progress: Progress | None = None,
    model_cache: str | Path | None = None,
    input_version: int | None = None,
) -> Summary:
    """Score this worker's unfinished parts of ``input_path`` into ``output_dir`` (see the module docstring).
    ``model``: a ``LoadedModel`` (anything with ``predict`` and ``schema``), or a model directory or URI (a
    remote one is downloaded once into ``model_cache``)."""
    if batch_size < 1 or workers < 1 or not 0 <= worker_index < workers:
        raise InvalidArgument(f"need batch size >= 1 and 0 <= worker index < workers, got {batch_size=} "
                              f"{workers=} {worker_index=}")  # fmt: skip
    src = _open_source(Path(input_path), input_format, input_version)
    named = [c.strip() for c in join.split(",") if c.strip()] if isinstance(join, str) else list(join)
    joined = [] if join == "none" else list(src.columns) if join == "all" else named
    if unknown := [c for c in joined if c not in src.columns]:
        raise InvalidArgument(f"--join-input names no such input column {unknown}; the input has {src.columns}")

    def mine(k: int) -> bool:
        return k % workers == worker_index

    output = Path(output_dir)
    done = _resume(output, {"batch_size": batch_size, "rows": src.rows}, mine, worker_index)
    scorer = _Scorer(
        _load_model(str(model), model_cache) if isinstance(model, str | Path) else model, src, joined, prediction_column
    )
    parts_all = -(-src.rows // batch_size)
    parts_mine = len(range(worker_index, parts_all, workers))
    gap = parts_all * batch_size - src.rows if parts_all and mine(parts_all - 1) else 0  # the short last part
    errors = [output / "errors" / f"part-{k:05d}.jsonl" for k in done]
    state = {
        "parts_done": len(done),
        "parts_total": parts_mine,
        "rows_done": sum(pq.read_metadata(p).num_rows for p in done.values()),
        "rows_total": parts_mine * batch_size - gap,
        "bad_rows": sum(len(e.read_bytes().splitlines()) for e in errors if e.exists()),
    }

    def wanted(k: int) -> bool:
        return mine(k) and k not in done

    def groups(a: int, b: int) -> bool:  # whether rows [a, b) hold a wanted part
        return any(wanted(k) for k in range(a // batch_size, (b - 1) // batch_size + 1))

    started, scored = time.perf_counter(), 0
    for k, table in _parts(_batches(src, batch_size, groups), batch_size, wanted):
        part, bad = scorer.score(table, k * batch_size)
        _write_part(output, k, part, bad)
        scored += table.num_rows
        state["parts_done"] += 1
        state["rows_done"] += table.num_rows
        state["bad_rows"] += len(bad)
        seconds = time.perf_counter() - started
        _put_json(output / "_progress" / f"worker-{worker_index}.json",
                  {**state, "rows_per_second": scored / seconds, "seconds": seconds, "last_part": k})  # fmt: skip
        if on_progress is not None:
            on_progress(dict(state))
    seconds = time.perf_counter() - started
    if src.format == "csv":  # the reader saw every row: exact counts instead of the line count
        state["rows_total"], state["parts_total"] = state["rows_done"], state["parts_done"]
    rate = round(scored / seconds, 1) if seconds > 0 else 0.0
    return Summary(workers, worker_index, parts_skipped=len(done), rows_scored=scored, seconds=round(seconds, 3),
                   rows_per_second=rate, **state)  # fmt: skip


# ---- command line -----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m strato.batch.worker", description="Score a data set with an MLflow model."
    )
    parser.add_argument("--model", required=True, help="an MLflow model directory (or a model URI)")
    parser.add_argument("--cache", help="where a model URI is downloaded (default $STRATO_MODEL_CACHE)")
    parser.add_argument("--input", required=True, help="a Parquet file or directory, a Delta table, a CSV file")
    parser.add_argument("--input-version", type=int, default=None, help="a Delta table's version (default latest)")
    parser.add_argument("--output", required=True, help="the directory for part-K.parquet and errors/")
    parser.add_argument("--batch-size", type=int, default=1024, help="rows per part (default 1024)")
    parser.add_argument("--workers", type=int, default=1, help="how many workers share the input")
    parser.add_argument("--worker-index", type=int, default=0, help="this worker's index, 0 to workers-1")
    parser.add_argument("--join-input", default="none", help="none, all, or COL,COL: input columns to keep")
    parser.add_argument("--input-format", default="auto", choices=FORMATS)
    parser.add_argument("--prediction-column", default="prediction")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(f"[strato] {line}", flush=True)

    names = ("batch_size", "workers", "worker_index", "input_format", "prediction_column", "input_version")
    options = {k: getattr(args, k) for k in names}
    try:
        summary = score_parts(args.model, args.input, args.output, join=args.join_input, model_cache=args.cache,
                              on_progress=lambda state: say("progress " + json.dumps(state)), **options)  # fmt: skip
    except StratoError as exc:
        say("failure-reason " + json.dumps(exc.message))
        return 2
    say("batch-done " + json.dumps(asdict(summary)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
