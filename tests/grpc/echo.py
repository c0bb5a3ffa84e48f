"""gRPC echo server and client for switchyard's integration tests (grpcio, no codegen).

  python echo.py server            -> prints the port, serves until stdin closes
  python echo.py client TARGET [--tls CA_FILE NAME]
                                   -> runs unary, server-streaming, client-streaming and an
                                      error call through TARGET; prints OK or fails loudly
Messages are raw bytes (identity serializers), so no .proto compilation is needed.
"""
import sys

import grpc

SERVICE = "echo.Echo"


def identity(data):
    return data


def say(request, context):
    context.set_trailing_metadata((("x-echo-trailer", "unary"),))
    return b"echo:" + request


def stream(request, context):
    for i in range(3):
        yield b"%s-%d" % (request, i)


def collect(request_iterator, context):
    return b"+".join(request_iterator)


def fail(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing: " + request.decode())


def serve():
    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handlers = {
        "Say": grpc.unary_unary_rpc_method_handler(say, identity, identity),
        "Stream": grpc.unary_stream_rpc_method_handler(stream, identity, identity),
        "Collect": grpc.stream_unary_rpc_method_handler(collect, identity, identity),
        "Fail": grpc.unary_unary_rpc_method_handler(fail, identity, identity),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(0)


def client(target, tls):
    if tls:
        ca_file, name = tls
        with open(ca_file, "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        channel = grpc.secure_channel(
            target, credentials, options=(("grpc.ssl_target_name_override", name),)
        )
    else:
        channel = grpc.insecure_channel(target)
    with channel:
        method = lambda kind, name: getattr(channel, kind)(
            "/%s/%s" % (SERVICE, name), request_serializer=identity, response_deserializer=identity
        )
        reply, call = method("unary_unary", "Say").with_call(b"hi", timeout=10)
        assert reply == b"echo:hi", reply
        trailers = dict(call.trailing_metadata())
        assert trailers.get("x-echo-trailer") == "unary", trailers
        assert call.code() == grpc.StatusCode.OK, call.code()

        replies = list(method("unary_stream", "Stream")(b"s", timeout=10))
        assert replies == [b"s-0", b"s-1", b"s-2"], replies

        joined = method("stream_unary", "Collect")(iter([b"a", b"b", b"c"]), timeout=10)
        assert joined == b"a+b+c", joined

        try:
            method("unary_unary", "Fail")(b"x", timeout=10)
            raise AssertionError("Fail did not fail")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND, error.code()
            assert error.details() == "no such thing: x", error.details()

        for i in range(50):
            assert method("unary_unary", "Say")(b"%d" % i, timeout=10) == b"echo:%d" % i
    print("OK", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve()
    else:
        tls = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 3 and sys.argv[3] == "--tls" else None
        client(sys.argv[2], tls)
