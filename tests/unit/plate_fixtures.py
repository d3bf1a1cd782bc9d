"""Plate test fixtures: a rendered plate on a street-grey frame and a tiny real ONNX 'text detector'."""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort

PLATE_BOX = (200, 150, 330, 180)  # x1, y1, x2, y2 of the rendered plate in plate_frame()


def plate_frame(height: int = 360, width: int = 640) -> np.ndarray:
    """A grey frame with a white plate carrying dark characters: the pattern a text detector fires on."""
    bgr = np.full((height, width, 3), 110, np.uint8)
    x1, y1, x2, y2 = PLATE_BOX
    cv2.rectangle(bgr, (x1, y1), (x2, y2), (235, 235, 235), thickness=cv2.FILLED)
    cv2.rectangle(bgr, (x1, y1), (x2, y2), (30, 30, 30), thickness=1)
    cv2.putText(bgr, "AB 1234", (x1 + 8, y2 - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (20, 20, 20), 2, cv2.LINE_AA)
    return bgr


def dark_text_model() -> ort.InferenceSession:
    """A real ONNX model with the DB detector's interface: (1, 3, H, W) in [-1, 1] -> (1, 1, H, W) probability.

    It scores a pixel by the local contrast around it (max - min over 5 x 5, averaged over 5 x 15), so the
    strokes of a word merge into one region, the way a text detector's map does, and flat frame stays empty.
    """
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("ReduceMean", ["x"], ["grey"], axes=[1], keepdims=1),
        helper.make_node("MaxPool", ["grey"], ["high"], kernel_shape=[5, 5], pads=[2, 2, 2, 2]),
        helper.make_node("Neg", ["grey"], ["neg"]),
        helper.make_node("MaxPool", ["neg"], ["neg_low"], kernel_shape=[5, 5], pads=[2, 2, 2, 2]),
        helper.make_node("Add", ["high", "neg_low"], ["contrast"]),  # local max - local min
        helper.make_node("AveragePool", ["contrast"], ["local"], kernel_shape=[5, 15], pads=[2, 7, 2, 7],
                         count_include_pad=0),
        helper.make_node("Mul", ["local", "gain"], ["scaled"]),
        helper.make_node("Add", ["scaled", "bias"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["prob"]),
    ]
    inits = [
        helper.make_tensor("gain", TensorProto.FLOAT, [], [8.0]),
        helper.make_tensor("bias", TensorProto.FLOAT, [], [-10.0]),
    ]
    graph = helper.make_graph(
        nodes, "dark_text",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, None, None])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 1, None, None])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
