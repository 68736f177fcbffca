# Loads the LSTM that interop_lstm.cpp saved into PyTorch (strict) and checks PyTorch's output against heed's.
# Reads safetensors by hand (json + numpy); with the `safetensors` package, use safetensors.torch.load_file.
import json
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


def load_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    tensors = {}
    for name, info in header.items():
        if name != "__metadata__":
            begin, end = info["data_offsets"]
            array = np.frombuffer(data[8 + n + begin:8 + n + end], dtype=DTYPES[info["dtype"]])
            tensors[name] = torch.from_numpy(array.reshape(info["shape"]).copy())
    return tensors


lstm = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True)
lstm.load_state_dict(load_safetensors("heed_lstm.safetensors"), strict=True)
io = load_safetensors("heed_lstm_io.safetensors")
with torch.no_grad():
    output, _ = lstm(io["input"], (io["h0"], io["c0"]))
diff = (output - io["output"]).abs().max().item()
print(f"max |pytorch - heed| = {diff:.2e}")
sys.exit(0 if diff < 1e-5 else 1)
