"""An empty PredictionService (answers every Predict with an empty response): the cost of a gRPC round
trip in Python by itself, the baseline of the serving benchmark.

    python -m bench.empty_grpc_server PORT
"""

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


class Empty(prediction_service_pb2_grpc.PredictionServiceServicer):
    def Predict(self, request, context):
        return predict_pb2.PredictResponse()


def main() -> None:
    server = grpc.server(ThreadPoolExecutor(max_workers=32))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Empty(), server)
    server.add_insecure_port(f"127.0.0.1:{sys.argv[1]}")
    server.start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
