"""The request handlers, one per API, as TF Serving splits them: predict, classify, regress,
multi_inference, metadata, status, reload. Each takes the ServerCore and a request proto and
returns the response proto, or raises ServingError with TF Serving's code for the mistake."""
