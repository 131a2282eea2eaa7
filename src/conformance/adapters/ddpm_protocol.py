"""The Python side of the `ddpm-spec check --impl` protocol: JSON lines over stdin/stdout.

Copy this file next to your implementation (it needs only numpy), write one handler per operation and call
`serve`:

    from ddpm_protocol import serve, Unsupported

    def q_sample(args, inputs):
        betas, x0, t, noise = inputs["betas"], inputs["x_start"], inputs["t"], inputs["noise"]
        ...
        return {"x_t": x_t}

    serve("my-ddpm 0.1 (numpy)", {"q_sample": q_sample})

A handler receives `args` (a dict of the non-tensor parameters) and `inputs` (a dict of numpy arrays: float64,
or int64 for integer timesteps) and returns a dict of output arrays (any float dtype; nested results are
flattened with dots, e.g. "terms.loss", "grads.loss.W"). Raise `Unsupported(reason)` for arguments you do not
support (the checker skips that case); any other exception becomes an error answer (the case fails, unless the
golden data records an error there too). The names of every operation's args, inputs and outputs are in
`src/conformance/protocol.schema.json` and `docs/conformance.md`.

Rules: stdout carries only protocol messages (this module redirects `print` to stderr while a handler runs);
requests are answered in order; the process exits when stdin closes.
"""

import contextlib
import json
import sys
import traceback

import numpy as np

PROTOCOL_VERSION = 1


class Unsupported(Exception):
    """These arguments are not supported by the implementation: the checker lists the case as skipped."""


def decode_tensor(v, name):
    """A wire tensor {dtype, shape, data} as a numpy array ("inf", "-inf", "nan" strings included)."""
    if not isinstance(v, dict) or not {"dtype", "shape", "data"} <= set(v):
        raise ValueError(f"input {name}: expected a tensor {{dtype, shape, data}}")
    dtype = np.int64 if v["dtype"] in ("int64", "int32", "int16", "int8", "uint8", "bool") else np.float64
    arr = np.asarray(v["data"], dtype=np.float64)
    if dtype is np.int64:
        arr = arr.astype(np.int64)
    return arr.reshape(v["shape"])


def encode_tensor(a, name):
    """A numpy array (or anything np.asarray accepts) as a wire tensor; non-finite values become strings."""
    a = np.asarray(a)
    if a.dtype.kind in "iub":
        return {"dtype": "int64", "shape": list(a.shape), "data": a.astype(np.int64).tolist()}
    if a.dtype.kind != "f":
        raise TypeError(f"output {name}: expected a numeric array, got dtype {a.dtype}")
    dtype = "float32" if a.dtype == np.float32 else "float64"
    a64 = a.astype(np.float64)
    if np.all(np.isfinite(a64)):
        data = a64.tolist()
    else:
        obj = a64.astype(object)
        obj[np.isnan(a64)] = "nan"
        obj[np.isposinf(a64)] = "inf"
        obj[np.isneginf(a64)] = "-inf"
        data = obj.tolist()
    return {"dtype": dtype, "shape": list(a.shape), "data": data}


def serve(name, handlers, notes=None, stdin=None, stdout=None):
    """Answer protocol requests with `handlers` ({op: fn(args, inputs) -> {name: array}}) until stdin closes."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout

    def send(msg):
        stdout.write(json.dumps(msg, allow_nan=False) + "\n")
        stdout.flush()

    for line in stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
        except json.JSONDecodeError:
            print(f"ddpm_protocol: ignoring a line that is not JSON: {line[:80]!r}", file=sys.stderr)
            continue
        rid, op = req.get("id", -1), req.get("op")
        if op == "hello":
            hello = {"protocol": PROTOCOL_VERSION, "name": name, "ops": sorted(handlers)}
            if notes:
                hello["notes"] = notes
            send({"id": rid, "hello": hello})
            continue
        fn = handlers.get(op)
        if fn is None:
            send({"id": rid, "error": {"message": f"operation {op} is not implemented", "type": "unsupported"}})
            continue
        try:
            inputs = {k: decode_tensor(v, k) for k, v in (req.get("inputs") or {}).items()}
            with contextlib.redirect_stdout(sys.stderr):
                out = fn(req.get("args") or {}, inputs)
            send({"id": rid, "outputs": {k: encode_tensor(v, k) for k, v in out.items()}})
        except Unsupported as e:
            send({"id": rid, "error": {"message": str(e), "type": "unsupported"}})
        except Exception as e:  # noqa: BLE001 - every failure is reported to the checker
            traceback.print_exc(file=sys.stderr)
            send({"id": rid, "error": {"message": f"{e}", "type": type(e).__name__}})
