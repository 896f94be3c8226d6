"""Privacy-preserving machine learning built on mpc and protocols (layer: ml): federated learning, DP, private inference, vertical learning, training on secret shares."""
