"""Local fakes of outside providers that speak the providers' real wire protocols (see README.md)."""
