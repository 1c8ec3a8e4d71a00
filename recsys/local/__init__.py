"""The embedded local stack: a moto server (AWS APIs) and a real Redis on loopback, provisioned from the catalogue."""
