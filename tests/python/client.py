"""
The lecture's §8 client (客户端-收发一句话), unchanged except for the port:
it connects to the port given as its first argument.

案例:
    服务器端给客户端发送一句话: Welcome to study socket!,  客户端接收到并打印, 然后给出回执信息.

服务器端代码思路:
    1. 创建客户端Socket对象, 指定: 地址族, 传输方式.
    2. 连接服务器端, 指定: 要连接到的服务器ip地址 和 端口号.
    3. 接收服务器端的发送的信息.
    4. 给服务端写一句话: 回执信息.
    5. 释放资源.
"""
import socket
import sys

# 1. 创建客户端Socket对象, 指定: 地址族, 传输方式.
cli_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)

# 2. 连接服务器端, 指定: 要连接到的服务器ip地址 和 端口号.
cli_socket.connect(('127.0.0.1', int(sys.argv[1])))

# 3. 接收服务器端的发送的信息.
recv_data_bytes = cli_socket.recv(1024)       # 1024: 表示最大接收字节数.  二进制形式的字符串.
recv_data = recv_data_bytes.decode(encoding='utf-8')
print(f'客户端接收到: {recv_data}')

# 4. 给服务端写一句话: 回执信息.
cli_socket.send('收到, 已开始学习, So Easy!'.encode(encoding='utf-8'))

# 5. 释放资源.
cli_socket.close()
