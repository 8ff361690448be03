"""HTTP/JSON gateway: the gRPC API's `google.api.http` routes served by the same servicers,
canonical proto JSON in and out, errors as AIP-193 JSON bodies, and the OpenAPI document."""
