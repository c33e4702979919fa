"""The gRPC edge: protobuf <-> domain conversion, authentication, error mapping, servicers."""
