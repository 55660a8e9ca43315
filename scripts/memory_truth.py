"""Is nl.summary's "required" memory true? Each case runs in a fresh process:
the summary's figure, then the same work with tracemalloc on (NumPy reports
its allocations to it): the peak from before the parameters are allocated to
the end of the step. Error = (summary - measured) / measured.

    python scripts/memory_truth.py            # every case
    python scripts/memory_truth.py crnn-train-32

Cases: the seed CRNN training step at batch 32 (forward, CTC loss, backward;
no optimiser step: the summary counts no optimiser state), DictNet batch-1
inference in float32, and DictNet batch-1 inference compressed (structure
from PLANS; no trained 88,172-word DictNet exists, so the weights are
constants: sizes and memory only, no accuracy).
"""
import json
import subprocess
import sys

CASES = ("crnn-train-32", "dictnet-infer-1", "dictnet-fp16-infer-1", "dictnet-int8-infer-1",
         "dictnet-svd-infer-1", "dictnet-svd+int8-infer-1")

# The compressed structures of the full DictNet measured here. Ranks given by
# hand (no trained weights to choose them from): classifier 2048, fc1 1024.
_LOW = {"kind": "lowrank", "storage": "float32"}
PLANS = {
    "fp16": {name: {"kind": "quantized", "rank": None, "storage": "float16"}
             for name in ("fc1", "fc2", "classifier")},
    "int8": {name: {"kind": "quantized", "rank": None, "storage": "int8"}
             for name in ("fc1", "fc2", "classifier")},
    "svd": {"fc1": dict(_LOW, rank=1024), "classifier": dict(_LOW, rank=2048)},
    "svd+int8": {"fc1": dict(_LOW, rank=1024, storage="int8"),
                 "fc2": {"kind": "quantized", "rank": None, "storage": "int8"},
                 "classifier": dict(_LOW, rank=2048, storage="int8")},
}

CHILD = r"""
import json, sys, time, tracemalloc
import numpy as np
import nnlite as nl
from nnlite.model_summary import summary
case = sys.argv[1]
result = {"case": case}

def peak_of(run):
    tracemalloc.start()
    t = time.time()
    run()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, time.time() - t

if case == "crnn-train-32":
    from nnlite.models import crnn
    shape, batch = (1, 32, 128), 32
    model = crnn.crnn()
    s = summary(model, shape, batch=batch, train=True)
    result["required"] = s.totals["required_bytes"]
    del model
    # The summary left conv2d's kept buffers allocated; the measured step must
    # make its own, as a fresh process would (they are part of its memory).
    from nnlite.functional.conv import release_conv_buffers
    release_conv_buffers()
    def step():
        nl.manual_seed(0)
        model = crnn.crnn()
        model.train()
        x = nl.tensor(np.random.default_rng(0).random((batch,) + shape, dtype=np.float32))
        texts = ["word"] * batch
        alphabet = crnn.alphabet()
        targets, lengths = crnn.encode_batch(texts, alphabet)
        loss = crnn.ctc_loss(model(x), targets, lengths, blank=len(alphabet) - 1)
        loss.backward()
    result["measured"], result["seconds"] = peak_of(step)
else:
    from nnlite import compression
    from nnlite.models import jaderberg
    shape = jaderberg.INPUT_SHAPE
    method = case.split("-")[1] if case.count("-") == 3 else None
    with nl.nn.meta():
        model = jaderberg.dictnet()
    if method is not None:
        plan = json.loads(sys.argv[2])[method]
        compression.restructure(model, plan)
    s = summary(model, shape, batch=1)
    result["required"] = s.totals["required_bytes"]
    result["param_bytes"] = s.totals["param_bytes"]
    result["fits_1.5GiB"] = s.fits
    def infer():
        model.to_empty(device="cpu")
        for p in list(model.parameters()) + list(model.buffers()):
            p.data[...] = 0.01 if p.data.dtype.kind == "f" else 1
        model.eval()
        with nl.no_grad():
            model(nl.tensor(np.zeros((1,) + shape, np.float32)))
    result["measured"], result["seconds"] = peak_of(infer)
result["error"] = (result["required"] - result["measured"]) / result["measured"]
print(json.dumps(result))
"""


def main(argv):
    cases = argv or CASES
    rows = []
    for case in cases:
        done = subprocess.run([sys.executable, "-c", CHILD, case, json.dumps(PLANS)],
                              capture_output=True, text=True)
        if done.returncode:
            print(case, "FAILED", done.stderr[-2000:])
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        weights = f"weights {row['param_bytes'] / 2**20:7.1f} MiB, fits 1.5 GiB: " \
            f"{row['fits_1.5GiB']}  " if "param_bytes" in row else ""
        print(f"{case:26s} {weights}summary {row['required'] / 2**20:9.1f} MiB  measured "
              f"{row['measured'] / 2**20:9.1f} MiB  error {100 * row['error']:+.1f}%  "
              f"({row['seconds']:.0f} s)", flush=True)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
