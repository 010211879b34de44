"""The ERP/WMS edge: what Tonglu sends (`payloads`: signed JSON webhooks; `qimen`: Qimen deliveryorder.create),
their signatures (`signing`), a lean keep-alive pipelining HTTP/1.1 client (`http1`), and the local ERP/WMS
simulator that receives them and plays the warehouse (`simulator`, `warehouse`).
"""
