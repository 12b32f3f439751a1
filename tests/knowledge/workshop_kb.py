"""A small bilingual (en + zh) knowledge base of a car workshop, written for the tests.

`QUESTIONS` are the entries' example questions; `HELD_OUT` are paraphrases that are not in the
KB and must land on the right entry; `UNRELATED` must be rejected as out of scope.
"""

from __future__ import annotations

from knowledge.entries import Entry, KnowledgeBase

QUESTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "opening_hours": {
        "en": (
            "What are your opening hours?",
            "When are you open?",
            "Are you open on Saturday?",
            "What time do you close today?",
            "Is the workshop open on Sundays?",
        ),
        "zh": ("你们几点开门？", "周六营业吗？", "今天几点关门？"),
    },
    "oil_change": {
        "en": (
            "How much is an oil change?",
            "Can you change the engine oil?",
            "How often should I change my oil?",
            "Do you do oil and filter services?",
        ),
        "zh": ("换机油多少钱？", "多久换一次机油？", "可以帮我换机油吗？"),
    },
    "tyres": {
        "en": (
            "Do you sell tyres?",
            "Can you replace my tires?",
            "I have a flat tyre, can you fix it?",
            "Do you store winter tires?",
        ),
        "zh": ("你们卖轮胎吗？", "轮胎扎了能补吗？", "可以换冬季轮胎吗？"),
    },
    "brakes": {
        "en": (
            "My brakes are squeaking",
            "How much does it cost to replace brake pads?",
            "Can you check my brakes?",
            "The brake pedal feels soft",
        ),
        "zh": ("刹车有异响", "换刹车片要多少钱？", "能帮我检查一下刹车吗？"),
    },
    "booking": {
        "en": (
            "How do I book an appointment?",
            "Can I schedule a service online?",
            "I want to make a booking for next week",
            "Do I need an appointment?",
        ),
        "zh": ("怎么预约保养？", "我想预约下周的服务", "需要提前预约吗？"),
    },
    "payment": {
        "en": (
            "Which payment methods do you accept?",
            "Can I pay by card?",
            "Do you take cash?",
            "Can I pay in instalments?",
        ),
        "zh": ("可以刷卡吗？", "支持微信支付吗？", "可以分期付款吗？"),
    },
    "courtesy_car": {
        "en": (
            "Do you offer a courtesy car?",
            "Can I get a loan car while mine is being repaired?",
            "Is there a replacement vehicle available?",
        ),
        "zh": ("维修期间有代步车吗？", "可以借一辆车用吗？"),
    },
    "warranty": {
        "en": (
            "Is your work covered by a warranty?",
            "How long is the guarantee on repairs?",
            "Will servicing here keep my manufacturer warranty valid?",
        ),
        "zh": ("维修有保修吗？", "保修期多长？"),
    },
    "location": {
        "en": (
            "Where are you located?",
            "What is your address?",
            "Is there parking at the workshop?",
            "How do I get to your garage?",
        ),
        "zh": ("你们的地址在哪里？", "怎么去你们店？", "店里有停车位吗？"),
    },
    "inspection": {
        "en": (
            "Can you do the annual vehicle inspection?",
            "My MOT is due, can you do it?",
            "Do you do safety inspections?",
        ),
        "zh": ("可以做年检吗？", "年审在你们这里能做吗？"),
    },
}

HELD_OUT: tuple[tuple[str, str], ...] = (
    ("what hours are you open on weekdays", "opening_hours"),
    ("are you guys open on sunday morning", "opening_hours"),
    ("星期天开门吗", "opening_hours"),
    ("what's the price for an oil service", "oil_change"),
    ("my car needs new engine oil", "oil_change"),
    ("机油更换的价格是多少", "oil_change"),
    ("i got a puncture in my tyre", "tyres"),
    ("can you put on new tyres for me", "tyres"),
    ("我的轮胎漏气了", "tyres"),
    ("the brakes make a grinding noise", "brakes"),
    ("how much for new brake pads", "brakes"),
    ("刹车踩下去软软的", "brakes"),
    ("i'd like to book a service", "booking"),
    ("can i make an appointment for tomorrow", "booking"),
    ("我要预约明天保养", "booking"),
    ("do you accept credit cards", "payment"),
    ("can i pay with alipay", "payment"),
    ("能用现金付款吗", "payment"),
    ("will i get a car to use during the repair", "courtesy_car"),
    ("修车的时候能给我一辆车开吗", "courtesy_car"),
    ("do your repairs come with a guarantee", "warranty"),
    ("修好以后保修多久", "warranty"),
    ("what's the address of the garage", "location"),
    ("你们店在什么位置", "location"),
    ("can my car get its yearly inspection done here", "inspection"),
    ("我的车要年检了", "inspection"),
)

UNRELATED: tuple[str, ...] = (
    "what is the capital of australia",
    "write me a poem about the sea",
    "who won the football world cup in 2010",
    "how many calories are in a banana",
    "今天的股票行情怎么样",
    "给我讲一个笑话",
)


def workshop_kb() -> KnowledgeBase:
    """The knowledge base, with a short answer per language."""
    return KnowledgeBase(
        tuple(
            Entry(
                id=entry_id,
                questions=dict(questions),
                answers={"en": f"[{entry_id} answer]", "zh": f"[{entry_id} 回答]"},
                titles={"en": entry_id.replace("_", " ")},
            )
            for entry_id, questions in QUESTIONS.items()
        )
    )
