"""What watches a deployment: shadow reports, live differential tests between versions, drift of live
inputs against the training statistics in the model card.

monitor may import the client SDK and read model cards; nothing but tests and bench imports monitor.
"""
