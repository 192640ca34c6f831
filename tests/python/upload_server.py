"""The lecture's §12 server (案例: 演示客户端给服务器端上传1个文件), port changed.

Binds 127.0.0.1 port 0 and prints the port first; saves into DATA_DIR/hg.txt
(DATA_DIR is argv[1], so the test chooses where ./data is)."""
import socket
import sys

data_dir = sys.argv[1]
server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.bind(('127.0.0.1', 0))
server_socket.listen(5)
print(server_socket.getsockname()[1], flush=True)
print('服务器端, 开始监听了...', flush=True)
accept_socket, client_info = server_socket.accept()
with open(f'{data_dir}/hg.txt', 'wb') as dest_f:
    while True:
        data = accept_socket.recv(1024)
        if len(data) <= 0:
            break
        dest_f.write(data)
accept_socket.close()
