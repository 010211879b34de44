"""Realistic demo data: products, buyers and addresses (real province/city/district combinations)."""
from __future__ import annotations

PRODUCTS_CN = [
    # merchant_sku, title, unit price in fen
    ("TL-MUG-350-WHT", "同路陶瓷马克杯 350ml 白色", 3990),
    ("TL-TOWEL-L-GRY", "同路纯棉浴巾 大号 灰色", 9000),
    ("TL-PILLOW-STD", "同路记忆棉枕头 标准款", 5900),
    ("TL-SLIPPER-42", "同路防滑拖鞋 42码", 4500),
    ("TL-TEA-500", "同路乌龙茶 500g", 12800),
    ("TL-BOWL-SET4", "同路骨瓷碗 四只装", 16900),
    ("TL-LAMP-LED", "同路护眼台灯", 19900),
    ("TL-SOCKS-5P", "同路棉袜 五双装", 2990),
]
PRODUCTS_INTL = [
    ("TL-MUG-BLK", "Ceramic Mug - Black", 1800),
    ("TL-TEA-500", "Oolong Tea 500g", 4800),
    ("TL-TOWEL-L", "Cotton Bath Towel - Large", 3200),
    ("TL-LAMP-LED", "LED Desk Lamp", 5900),
    ("TL-SOCKS-5P", "Cotton Socks 5-Pack", 1500),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "霞", "平"]
MOBILE_PREFIXES = ["138", "139", "136", "137", "150", "151", "158", "186", "187", "189", "135", "177", "199"]
# (province, city, district, town, street, postal code): real administrative divisions
ADDRESSES_CN = [
    ("浙江省", "杭州市", "西湖区", "文新街道", "文三路477号华星科技大厦", "310012"),
    ("广东省", "深圳市", "南山区", "粤海街道", "科技园南区高新南七道12号", "518057"),
    ("北京市", "北京市", "朝阳区", "建外街道", "建国路88号院3号楼", "100022"),
    ("上海市", "上海市", "浦东新区", "陆家嘴街道", "世纪大道100号", "200120"),
    ("江苏省", "南京市", "鼓楼区", "湖南路街道", "中山北路30号", "210008"),
    ("四川省", "成都市", "武侯区", "玉林街道", "玉林北路18号", "610041"),
    ("湖北省", "武汉市", "洪山区", "珞南街道", "珞喻路129号", "430070"),
    ("山东省", "青岛市", "市南区", "八大关街道", "香港中路76号", "266071"),
    ("福建省", "厦门市", "思明区", "鹭江街道", "中山路209号", "361001"),
    ("陕西省", "西安市", "雁塔区", "小寨路街道", "长安中路58号", "710061"),
]
NAMES_EN = [("Mia", "Chen"), ("Leo", "Park"), ("Ava", "Smith"), ("Noah", "Garcia"), ("Emma", "Brown"), ("Liam", "Lee")]
ADDRESSES_US = [
    ("350 5th Ave", "New York", "New York", "NY", "10118"),
    ("1600 Amphitheatre Pkwy", "Mountain View", "California", "CA", "94043"),
    ("233 S Wacker Dr", "Chicago", "Illinois", "IL", "60606"),
    ("400 Broad St", "Seattle", "Washington", "WA", "98109"),
]
CARRIERS_CN = [("ZTO", "中通快递"), ("YTO", "圆通速递"), ("SF", "顺丰速运"), ("YUNDA", "韵达快递"), ("STO", "申通快递")]
CARRIERS_US = ["UPS", "USPS", "FedEx"]
BUYER_MESSAGES = ["请尽快发货", "周末送货", "", "", "", "包装仔细一点，谢谢"]
