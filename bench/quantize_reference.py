"""
The reference for bench/quantize.bench.ts: the same work done with onnxruntime's Python tools, run as one
process per method so that wall time and peak RSS cover the whole job, as modelforge's are measured.

  int8: onnxruntime.quantization.quantize_static, QDQ format, per channel, symmetric int8 activations and
        weights, MatMul/Gemm (the TensorRT recipe of optimum's AutoQuantizationConfig.tensorrt), calibrated
        on test_data_set_0..N-1 and checked on the held-out sets after them.
  fp16: onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True).

Prints one JSON line: {"method": ..., "cosine": lowest cosine over the outputs, "max_abs_err": ...}.
usage: python quantize_reference.py <model.onnx> <data dir> <out.onnx> <minmax|percentile|entropy|fp16> <calib sets> <held-out sets>
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def read_set(path):
    files = sorted(f for f in os.listdir(path) if f.startswith("input_") and f.endswith(".pb"))
    feeds = {}
    for f in files:
        t = onnx.TensorProto()
        with open(os.path.join(path, f), "rb") as fh:
            t.ParseFromString(fh.read())
        feeds[t.name] = numpy_helper.to_array(t)
    return feeds


def main():
    model, data, out, method, n_calib, n_eval = sys.argv[1:7]
    n_calib, n_eval = int(n_calib), int(n_eval)
    sets = [os.path.join(data, f"test_data_set_{i}") for i in range(n_calib + n_eval)]
    if method == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        onnx.save(convert_float_to_float16(onnx.load(model), keep_io_types=True), out)
        held = sets[n_calib:]
    else:
        from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter(sets[:n_calib])

            def get_next(self):
                p = next(self.it, None)
                return None if p is None else read_set(p)

        quantize_static(
            model, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
            calibrate_method={"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile, "entropy": CalibrationMethod.Entropy}[method],
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
        )
        held = sets[n_calib:]
    ref = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    cand = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    names = [o.name for o in ref.get_outputs()]
    got = {n: [] for n in names}
    want = {n: [] for n in names}
    for p in held:
        feeds = read_set(p)
        for n, a, b in zip(names, cand.run(names, feeds), ref.run(names, feeds)):
            got[n].append(a)
            want[n].append(b)
    cosines, errs = [], []
    for n in names:
        a = np.concatenate(got[n]).astype(np.float64).ravel()
        b = np.concatenate(want[n]).astype(np.float64).ravel()
        cosines.append(float(a @ b / np.sqrt((a @ a) * (b @ b))))
        errs.append(float(np.max(np.abs(a - b))))
    print(json.dumps({"method": method, "cosine": min(cosines), "max_abs_err": max(errs)}))


main()
