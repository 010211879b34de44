"""Free-text masking: phones, ID cards, e-mails and house numbers typed by buyers; order numbers,
prices and dates left readable."""
import pytest

from schemas.free_text import mask_free_text


@pytest.mark.parametrize("text, masked", [
    # mainland mobiles, every way buyers type them
    ("13812345678", "138****5678"),
    ("电话13812345678谢谢", "电话138****5678谢谢"),
    ("到了打电话 138 1234 5678 ", "到了打电话 138****5678 "),
    ("138-1234-5678", "138****5678"),
    ("1 3 8 1 2 3 4 5 6 7 8", "138****5678"),
    ("+86 138 1234 5678", "138****5678"),
    ("+8613812345678", "138****5678"),
    ("(+86)13812345678", "138****5678"),
    ("008613812345678", "138****5678"),
    ("8613812345678", "138****5678"),
    ("１３８１２３４５６７８", "138****5678"),                     # full-width digits
    ("手机：１３８　１２３４　５６７８，白天都在", "手机：138****5678，白天都在"),  # full-width spaces
    ("联系人张先生199.1234.5678", "联系人张先生199****5678"),
    ("换号了19912345678,原来的不用了", "换号了199****5678,原来的不用了"),
    ("两个号13812345678/13987654321都行", "两个号138****5678/139****4321都行"),
    # landlines with an area code, with and without brackets and extensions
    ("0571-88886666", "057*****6666"),
    ("057188886666", "057*****6666"),
    ("(0571)88886666", "057*****6666"),
    ("（０５７１）８８８８６６６６", "057*****6666"),
    ("010-12345678转123", "010****5678"),
    ("公司电话 0755 2345 6789", "公司电话 075*****6789"),
    ("+86 571 8888 6666", "057*****6666"),
    # ID cards: 17 digits + digit or X, with a plausible birth date
    ("身份证330106199001011234清关用", "身份证3****************4清关用"),
    ("身份证号33010619900101123X", "身份证号3****************X"),
    ("身份证号33010619900101123x", "身份证号3****************x"),
    ("330106 19900101 123X", "3****************X"),
    ("３３０１０６２００５１２３１００１Ｘ", "3****************X"),
    # e-mails
    ("发票发到 leo.park@example.com 谢谢", "发票发到 l***@example.com 谢谢"),
    # house numbers after a road, and building / unit / room numbers
    ("改地址：文三路477号华星科技大厦3楼", "改地址：文三路***号华星科技大厦*楼"),
    ("送到建国路88号院2号楼1单元301室", "送到建国路**号院*号楼*单元***室"),
    ("淮海中路 1288 号", "淮海中路 **** 号"),
    ("长乐路1088弄12号", "长乐路****弄**号"),
    ("南锣鼓巷胡同8号", "南锣鼓巷胡同*号"),
    ("世纪大道100号", "世纪大道***号"),
    ("放5栋门口", "放*栋门口"),
])
def test_masks(text, masked):
    assert mask_free_text(text) == masked


@pytest.mark.parametrize("text", [
    "请尽快发货", "周末送货", "包装仔细一点，谢谢", "",
    "和订单2841736650118523691一起发",             # a 19-digit Taobao order number holds 138… runs
    "退款单155398271043367205怎么还没到",           # an 18-digit refund id without a birth date
    "订单号 240318-139123456789012",               # Pinduoduo-style order sn
    "JD订单 301234567890",                         # a 12-digit JD order id
    "价格 138.00 元，运费 12.50",                    # prices
    "3号之前发货，2024-03-18 09:58 下单",            # dates and times
    "买2件送1件，共3件",
    "型号 SKU-1381234567",                          # 10 digits: not a mobile
    "优惠券 13812345678901",                         # 14 digits: not a mobile
    "Gift wrap please",
])
def test_leaves_alone(text):
    assert mask_free_text(text) == text


def test_none_and_empty():
    assert mask_free_text(None) is None and mask_free_text("") == ""


def test_no_digit_of_a_masked_number_survives_in_a_long_message():
    text = ("您好，我是张三，身份证33010619900101123X，电话+86 139-8765-4321，备用 0571-88886666，"
            "地址杭州市西湖区文三路477号3号楼2单元1501室，订单2841736650118523691，谢谢！")
    out = mask_free_text(text)
    for secret in ("33010619900101123X", "139-8765", "98765", "88886666", "477", "1501"):
        assert secret not in out, (secret, out)
    assert "2841736650118523691" in out and "杭州市西湖区文三路" in out
