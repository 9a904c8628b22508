"""The Kubernetes API server part of the lab: storage, HTTP, watches, patches, subresources."""
