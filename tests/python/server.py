"""
The lecture's §7 server (服务器端-收发一句话), unchanged except for the port:
it binds port 0 so the OS picks a free one, and prints that port as the first
line of its output so a test can connect to it.

案例:
    服务器端给客户端发送一句话: Welcome to study socket!,  客户端接收到并打印, 然后给出回执信息.

服务器端代码思路:
    1. 创建服务器端Socket对象, 指定: 地址族, 传输方式.
    2. 绑定ip地址 和 端口号.
    3. 设置监听. 范围: 1 ~ 128, 一般设置为: 5
    4. 等待客户端申请建立连接, 如果有, 则创建1个新的socket对象负责和该客户端交互.
    5. 给客户端写一句话.
    6. 接收客户端的回执信息.
    7. 释放资源.
"""
import socket

# 1. 创建服务器端Socket对象, 指定: 地址族, 传输方式.
server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# 2. 绑定ip地址 和 端口号.  (port 0: the OS picks a free port; the test reads it below)
server_socket.bind(('127.0.0.1', 0))
# 3. 设置监听. 范围: 1 ~ 128, 一般设置为: 5
server_socket.listen(5)
print(server_socket.getsockname()[1], flush=True)
print('服务器端, 开始监听了...')

# 4. 等待客户端申请建立连接, 如果有, 则创建1个新的socket对象负责和该客户端交互.
accept_socket, client_info = server_socket.accept()

# 5. 给客户端写一句话.      二进制字符串形式.
accept_socket.send(b'Welcome to study socket!')

# 6. 接收客户端的回执信息.
recv_data_bytes = accept_socket.recv(1024)
recv_data = recv_data_bytes.decode(encoding='utf-8')
print(f'服务器端收到回执信息: {recv_data}')

# 7. 释放资源.
accept_socket.close()
