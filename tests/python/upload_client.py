"""The lecture's §12 client, port and file changed: uploads argv[2] to
127.0.0.1:argv[1] in 1024-byte chunks, including the lecture's empty last
send, then closes."""
import socket
import sys

cli_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
cli_socket.connect(('127.0.0.1', int(sys.argv[1])))
with open(sys.argv[2], 'rb') as src_f:
    while True:
        data = src_f.read(1024)
        cli_socket.send(data)
        if len(data) <= 0:
            break
cli_socket.close()
