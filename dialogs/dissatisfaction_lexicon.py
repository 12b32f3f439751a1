"""The curated lexicon behind `dialogs.dissatisfaction`: what complaints sound like.

Regular expressions over casefolded, NFKC-normalised text, English and Chinese side by side.
Each tuple is one class of cue; the weight of a class and how negation treats it are decided
in `dialogs.dissatisfaction`. Chinese has no spaces, so Chinese entries are plain substrings,
kept specific enough not to fire inside ordinary words ("差" alone is in 差不多 and 出差).
Add a phrase here when a real message was missed; add it to the labelled sets in
tests/dialogs/data too, so the measured precision and recall stay honest.
"""

from __future__ import annotations

from typing import Final

HUMAN: Final = (
    r"^(a |the )?(human|person|real person|live agent|agent|manager|supervisor|operator"
    r"|representative|customer service|staff)( please| pls| now)?$",
    r"\b(talk|speak|chat|connect|transfer|put)(ing)? (me |you )?(to|with|through to|in touch with) "
    r"(a |an |the |your |some )?(real |live |actual |duty |general |store |service )?(person|human"
    r"|manager|agent|supervisor|whoever is in charge|someone in charge"
    r"|representative|operator|someone|somebody|anyone|staff|team|owner|boss|customer service"
    r"|people|member of)\b",
    r"\b(someone|somebody|a person|staff|member of (staff|the team)|manager|owner)\b.{0,20}"
    r"\b(contact|call|ring|phone|email) me\b|\b(get|want|need|request|arrange|have) a call ?back\b"
    r"|\binstead of (a|the|this) (bot|robot)\b",
    r"\b(real|live|actual) (person|human|agent|people)\b|\b(a|an|the|some) human\b(?! resource)",
    r"\b(get|give|want|need|fetch|bring) (me )?(a|an|the|your) (manager|supervisor|boss|human"
    r"|representative|owner)\b|\bcall me back\b|\bescalate\b",
    r"人工(?!费|成本|智能|湖|草)|真人|活人|客服|^(经理|店长|负责人|主管|老板)$",
    r"(找|叫|请|让|接|转|见|联系|喊)(一下|个)?(你们|您们)?的?(值班|大堂)?(经理|店长|老板|负责人|领导|主管"
    r"|工作人员|前台)|找个?(活)?人(?=$|吧|啊|聊|说|谈|来)|(经理|店长|负责人|老板|主管)在(吗|不在)",
    r"(跟|和|与)(你们)?的?(经理|店长|老板|负责人|主管|工作人员|真人|活人)(直接)?(说|聊|谈|沟通|讲)",
    r"(不想|不要|别)再?(跟|和|让)(机器|机器人|ai|bot)",
)
HUMAN_HINTS: Final = (
    r"\bare you (a |an )?(bot|robot|machine|ai|real|human)\b|(你是|是不是)(机器人|机器|ai|真人)",
    r"\b(talk|speak|chat)(ing)? (to|with) (a |the |this )?(bot|robot|machine)\b",
)
COMPLAINT_WORDS: Final = (
    r"\bcomplain\w*|\bgrievance|\b(bad|negative|1[- ]star|one[- ]star) review\b",
    r"投诉|举报|差评|申诉|一星",
)
ANGER: Final = (
    r"\b(furious|outrage\w*|livid|disgust\w*|appall\w*|unacceptable|scam\w*|rip[- ]?off"
    r"|ripped off|fraud\w*|cheat(ed|ing|ers?)|worst|terrible|awful|horrible|horrendous|atrocious"
    r"|pathetic|useless|incompetent|rude\w*|ridiculous|shameful|lied|liars?|lying to"
    r"|unprofessional|ruin(ed|s)?|shocking|gross|disgrace\w*|abysmal|dreadful|diabolical|wtf"
    r"|bullshit"
    r"|fuck\w*|shit\w*|damn\w*)\b",
    r"\b(fed up|sick (and tired )?of|never (again|coming back|come back|using you)|waste of"
    r" (time|money|my time)|(this is|what) a joke|shame on you|how dare|gone (downhill|to the dogs)"
    r"|(this|that)('s| is| was) the last time|take my business elsewhere|(i've|i have) had it"
    r"|had enough)\b",
    r"垃圾|坑(人|爹|钱|我|死)|被坑|骗子|骗人|骗钱|欺骗|忽悠|宰客|黑店|气死|气人|愤怒|恶心|离谱|过分"
    r"|恶劣|无语|受够|不可理喻|岂有此理|什么破|破店|烂透|糟透|乱收费|不要脸|无耻|tmd|他妈|妈的"
    r"|再也不(来|去|会|买|用|找)|不像话|搞什么|什么玩意|白花钱|白跑|凭什么|什么(服务)?态度"
    r"|最(差|烂|糟|坑)|崩溃|撒谎|说谎|这(是|叫)什么服务|什么操作|什么鬼|浪费(我的)?(时间|钱)|受气|三番五次|跑来跑去|来回跑",
)
DISSATISFACTION: Final = (
    r"\b(disappoint\w*|unhappy|dissatisf\w+|unsatisfied|upset|frustrat\w*|annoy\w*|angry|mad at"
    r"|pissed|overcharg\w*|double[- ]charged|charged (me )?twice|filthy|dismissive|shoddy|sloppy"
    r"|careless|ignor(ed|ing)|condescending|arrogant|let down|below (par|standard)|not up to"
    r"|(expected|deserve) (better|more)|hidden (fees?|charges?|costs?)|(yelled|shouted) at"
    r"|talked down|treated (like|badly|poorly)|laugh(ed|ing) at me|rolled (her|his|their) eyes"
    r"|food poisoning|(never|won't|will not|wouldn't) (ever )?recommend|(way|far|much) too (long"
    r"|slow"
    r"|expensive|late)|(threw|thrown) (away|out) my|without (anyone|anybody|someone|somebody) "
    r"(telling|calling|informing|letting|asking))\b|(?<!\bi )(?<!\bwe )\bforgot (to|my|our)\b",
    r"\b(broke|broken|failed|leaking|stopped working|came back|not working) again\b",
    r"\bstill (not|isn't|doesn't|don't|won't|hasn't|haven't|no|broken|waiting|leaking|the same)\b",
    r"\b(nobody|no one|no-one) (\w+ ){0,2}(told|called|answer\w*|picks?|picked|repl\w+|respond\w*"
    r"|got back|gets back|cares|came|showed|bothered|informed|contacted|mentioned|warned|explained"
    r"|listen\w*|asked)\b"
    r"|\b(hasn't|has not|haven't|didn't|did not|won't|doesn't) (anyone|anybody|someone|somebody"
    r"|you|your \w+) (\w+ )?(call|contact|repl|respond|get back|got back|tell|told|listen|answer"
    r"|bother|warn|ask)\w*"
    r"|\b(is|isn't) any(one|body) (actually |even )?(working|there|listening)\b"
    r"|\bno (reply|response|answer|call back|callback)\b",
    r"\b(you|your \w+|they)( guys| people)? (scratched|damaged|dented|broke|ruined|lost|forgot"
    r"|overcharged|messed up|screwed up)\b|\barrived (damaged|broken)\b",
    r"\b(didn't|did not|never|without|no) (even )?(an? )?apolog\w*|\b(didn't|never) (even )?listen",
    r"\b(bill|invoice|charge|receipt|amount) (is|was) wrong\b|\bwrong (bill|invoice|charge"
    r"|amount)\b"
    r"|\b(not|won't|refuse to) (be )?pay(ing)? for\b|\bdidn't (approve|authori[sz]e|agree to)\b"
    r"|\b(called|rang|emailed|messaged|asked|tried|written|chased) (you )?(\w+ )?(three|four|five"
    r"|several|many|multiple|\d+) times\b|\bleft .{0,20}(greas\w+|stains?|marks?|scratch\w*|dents?"
    r"|mess)\b|\b(and|but) (you|the \w+) (were|was) closed\b"
    r"|\bdespite (two|three|four|several|many|multiple|\d+) (calls|emails|messages|requests"
    r"|reminders)"
    r"|\bcharged (me )?for .{0,25}(cancel\w*|didn't|never|wasn't)"
    r"|\b(order|package|delivery|parcel) (was |is )?missing|\bmissing from my\b",
    r"\b(peeling|falling apart|fell apart|came off|fell off|broke|broken|cracked|leaking|failed"
    r"|died"
    r"|stopped working)"
    r" (already |again )?(after|within) (just |only )?(a|one|two|three|\d+) (days?|weeks?|months?)"
    r"|\balready (peeling|broken|falling apart|leaking|cracked)\b|\bgot sick after\b",
    r"\bwaited (for )?(over |more than |almost |nearly )?(an hour|\w+ hours|\w+ days|ages|forever)"
    r"|\b(been|keep) waiting\b",
    r"\b(twice|double|more than|higher than|way over) (the |your |what (you|was) )?(quote|quoted"
    r"|estimate)",
    r"\b(very|so|really|too|extremely|incredibly|super|absolutely) (bad|dirty|slow|expensive"
    r"|noisy|poor|cold|late)\b|\b(poor|bad) (service|quality|workmanship|experience|job|attitude)",
    r"不满意?|失望|生气|郁闷|窝火|火大|烦死|敷衍|推脱|推卸|踢皮球|不耐烦|不负责|不理(人|我)|不接电话"
    r"|没人(理|管|接|回|来|处理|联系|通知|负责)|不承认|怎么(可以|能)这样|爱(答|理)不理|不理不睬|冷冰冰"
    r"|甩脸色|态度冷淡|不爽|无奈|难以?接受|(要|给|讨)(我)?(一个|个)?(说法|交代|解释)|货不对板"
    r"|(完全|根本|一点都|一点也)不(一样|符|对)|急死|烦死|吵死|热死|冷死|不认账|赖账|打不通|联系不上|没好过"
    r"|(不会|不再|绝不)再?(推荐|光顾|来了)|太久",
    r"又(坏|出问题|出毛病|漏|不行)|还是(没|不|坏|有问题|老样子|一样|亮|响|漏)"
    r"|(跟|和)没(修|做|洗|弄|换|治)(一样|差不多|区别)|还没(弄完|修好|处理|解决|回复|回音|给)"
    r"|一直(不|没)(?!问题|事|毛病)|(一|两|三|几|\d+)个?(天|星期|礼拜|周|月)就(坏|掉|漏|裂|脱|开胶|不行)"
    r"|(一直|还|都|也)(不|没)(发货|回复|回消息|回电话|联系|处理|到)|(两|三|四|五|好几|几|多)次(了)?都(没|不)",
    r"(等|修|拖|弄|排)了(半天|很久|好久|.{1,4}(分钟|小时|钟头|天|星期|礼拜|周|月))|多收|多扣|乱扣"
    r"|收错|开错|找错钱|弄坏|搞坏|弄丢|搞丢|弄脏|搞脏|划伤|刮花|刮伤|划了一道|蹭掉|蹭坏|碰坏|磕坏|被你们.{0,6}(弄|搞|蹭|刮|划|碰|磕)"
    r"|你们(到底|怎么回事|搞什么|在干什么|干什么吃)",
    r"(太|很|真|好|超|特别|非常|极其|十分|实在|挺|蛮|这么|那么)(是)?(差|烂|慢|贵|脏|乱|吵|糟)"
    r"|(服务|态度|质量|卫生|环境|效果|体验|技术|手艺|水平|效率|速度)(也|太|很|真|特别|非常|极其|实在){0,2}"
    r"(差|烂|糟糕|不行|一般|低|慢)",
    "[😡😠🤬😤👎💢]",
)
HINTS: Final = (
    r"\b(again|still|seriously|delay\w*|(been |keep )?trying to (reach|contact|call|get hold of)"
    r"|promised|supposed to|supposedly|every (single )?time"
    r"|(second|third|fourth|fifth) time|(the )?same (\w+ )?(problem|issue|noise|fault|rattle|leak"
    r"|error|light)|after (the|your|my) (service|repair|visit|treatment)|wrong (date|time|size|item"
    r"|part|room|name|price|order))\b",
    r"又|第(二|三|四|五|几)次|同(一个|样的?)问题|说好|到底|怎么回事|什么情况|一直|到现在|还要等"
    r"|还要多久|已经|都.{1,4}(分钟|小时|天|星期|周|月)了",
)
PRAISE: Final = (  # counts only when negated: "not happy", "不太满意"
    r"\b(happy|satisfied|pleased|impressed|acceptable|ok|okay|good|great|fixed|resolved|solved"
    r"|sorted|clean|professional|fair|helpful|friendly|polite|worth it)\b"
    r"|\b(what|the one) (i|we) (paid|asked|ordered|booked) for\b",
    r"满意|干净|专业|靠谱|负责|合理|礼貌|耐心|修好|解决|处理好|接受|值(得|钱)?(?!班)|(?<!好不)好(?=[了的啊呀吧]|$)",
)
MONEY: Final = (
    r"\b(want|demand|expect|deserve|need|insist on|give me) (a |my |full |the )?(refund|money"
    r" back)|\bmoney back\b|\brefund (me|my money)\b|\bcompensat\w+|\bchargeback\b",
    r"(我要|要求|必须|给我|马上|赶紧|立刻|立即)(全额)?(退款|退钱|赔偿|赔钱)|退钱|赔我",
)
SAFETY_FAILURES: Final = (
    r"\bbrakes? (failed|failure|gave out|stopped working|not working|don't work|doesn't work)\b"
    r"|\b(caught|on) fire\b|\bsmok(e|ing) (from|coming)\b|\bsteering (failed|locked)\b|\bunsafe\b"
    r"|\b(almost|nearly|could have) (crashed|died|killed|had an accident)\b",
    r"失灵|着火|起火|冒烟|受伤|差点(出事|撞|出车祸|死)|安全隐患",
)
SAFETY_WORDS: Final = (
    r"\b(dangerous|danger|accident|crash|emergency)\b",
    r"危险|事故|出事|车祸|紧急",
)
LEGAL: Final = (
    r"\b(lawyer|attorney|solicitor|sue|suing|lawsuit|legal action|court case|small claims"
    r"|ombudsman|trading standards|consumer (protection|rights|association))\b"
    r"|\b(see|take) you (to|in) court\b|\breport (you|this) to\b",
    r"律师|起诉|告你们|法院|消协|消费者协会|12315|市场监管|曝光|找媒体|维权",
)
INTENSIFIERS: Final = frozenset({
    "very", "so", "really", "too", "extremely", "incredibly", "absolutely", "totally",
    "completely", "utterly", "super", "such",
    "太", "很", "真", "好", "超", "特别", "非常", "极其", "十分", "实在",
    "简直", "真的", "太过", "超级",
})  # fmt: skip
NEGATORS: Final = frozenset({
    "not", "no", "never", "nothing", "none", "hardly", "barely", "without", "nor", "cannot",
    "cant", "dont", "didnt", "doesnt", "isnt", "wasnt", "arent", "werent", "wont", "havent",
    "hasnt",  # and any word ending in n't
    "不", "没", "未", "无法", "毫无", "并非",
})  # fmt: skip
# Words that may stand between a negator and what it negates: "not at all happy", "没什么可投诉的".
FILLERS: Final = frozenset({
    "i", "i'm", "im", "am", "is", "was", "are", "were", "be", "been", "it", "it's", "its",
    "this", "that's", "there", "there's", "we", "to", "a", "an", "the", "any", "at", "all",
    "very", "really", "too", "so", "that", "have", "has", "had", "feel", "felt", "much", "more",
    "quite", "entirely", "completely", "totally", "particularly", "exactly", "even", "remotely",
    "one", "bit", "single", "of", "about", "want", "need",
    "太", "很", "是", "怎么", "够", "算", "大", "那么", "这么", "特别", "十分", "非常",
    "一点", "一点儿",
    "也", "都", "什么", "可", "好", "有", "再", "还", "完全", "根本", "并", "令人", "让人", "感到",
    "觉得", "得", "从", "毫", "绝", "真", "我", "要", "需要", "用", "想", "对",
})  # fmt: skip
