"""A PredictionService that does nothing but the session call: the first request is decoded and
answered by the real handler once, then every Predict runs the model's session on those same feeds
and returns that same response. It is the least any Python gRPC server that runs the model per
request can cost here, so the serving benchmark reports it as the bound beside the real server.

    python -m bench.session_only_grpc_server PORT MODEL_VERSION_DIR
"""

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.servable import Servable
from serving.tensors import to_numpy, to_proto


class SessionOnly(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, servable: Servable) -> None:
        self.servable = servable
        self.feeds: dict | None = None
        self.response: predict_pb2.PredictResponse | None = None
        self.lock = threading.Lock()

    def Predict(self, request, context):
        if self.response is None:
            with self.lock:
                if self.response is None:
                    self.feeds = {name: to_numpy(t, name) for name, t in request.inputs.items()}
                    response = predict_pb2.PredictResponse()
                    for name, value in self.servable.run("serving_default", self.feeds).items():
                        to_proto(value, response.outputs[name])
                    response.model_spec.name = self.servable.name
                    response.model_spec.version.value = self.servable.version
                    response.model_spec.signature_name = "serving_default"
                    self.response = response
        self.servable.run("serving_default", self.feeds)
        return self.response


def main() -> None:
    servable = Servable.load("penguins", 1, sys.argv[2])
    server = grpc.server(ThreadPoolExecutor(max_workers=32))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(SessionOnly(servable), server)
    server.add_insecure_port(f"127.0.0.1:{sys.argv[1]}")
    server.start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
