"""The ERP/WMS edge: what Tonglu sends (`payloads`: signed JSON webhooks; `qimen`: Qimen deliveryorder.create),
their signatures (`signing`), and the local ERP/WMS simulator that receives them and plays the warehouse (`simulator`, `warehouse`).
"""
