"""Complete multi-party protocols built on mpc (layer: protocols): millionaires, secure aggregation, PSI, federated analytics."""
