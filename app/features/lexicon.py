"""Multilingual cue lists for the content stage: data only, compiled once by ``app.features.content``.

Patterns are regular-expression sources matched against text that has been NFKC-normalised, lowercased,
stripped of code and URLs and whitespace-folded. Lists are written from the threat model (what a
distillation prompt has to say to get its job done), not from any traffic generator: each signal is a
set of independent cue *groups*, and a score needs several groups to agree (see ``GROUPS``).

Conventions: in word-spaced languages a fragment is wrapped in word boundaries by the compiler, so write
stems with ``\\w*`` for inflections; CJK fragments are matched as substrings.
"""

from __future__ import annotations


def words(text: str) -> frozenset[str]:
    """A word set written as whitespace-separated text."""
    return frozenset(text.split())


# --------------------------------------------------------------------------------------------------------
# Trace elicitation: getting the model to write out its own hidden reasoning, or a reasoning trace for an
# answer that is already given. Per language:
#   jargon   names of a model's reasoning artefact (chain of thought, scratchpad, internal monologue)
#   plain    ordinary words for reasoning (weak: students and benchmarks use them)
#   steps    step/solution objects, only used with reconstruction verbs
#   hmod     modifiers that make the reasoning hidden/raw; hmod_mid: own/true/full (weaker)
#   self     references to the model itself (your, the model's)
#   hide     whole phrases meaning "the reasoning you normally keep hidden"
#   vstrong  verbs of exposure (reveal, dump, print, write out); vrecon: reconstruction (reconstruct,
#            reverse-engineer); vmed: ordinary verbs (show, give, put)
#   passive  exposure wording that follows the object ("... shown in full", "写出来")
#   answer   reference to an answer that is already given; answer_weak: "the answer is" (few-shot
#            benchmark prompts say this too)
#   weak     benchmark/student reasoning requests (step by step, show your work)
#   mode     fake debug/developer modes; mode_self: the model is told it is in such a mode
#   purpose  training-data purpose (dataset, distillation, fine-tuning)
# `space`: the language separates words with spaces (gaps are counted in words, not characters);
# `after`: modifiers follow the noun (razonamiento interno); `sov`: objects precede verbs.
# --------------------------------------------------------------------------------------------------------

_COT_EN = [r"chain[\s-]*of[\s-]*thoughts?", r"cots?"]
# Latin words inside CJK text touch CJK characters, so `\b` cannot delimit them; LB/LA mean "no Latin
# letter before/after" (CJK characters allowed), and the content stage's pre-filter understands them.
CJK_RANGES = "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
LB = rf"(?<![^\W\d_{CJK_RANGES}])"
LA = rf"(?![^\W\d_{CJK_RANGES}])"


def latin(word: str) -> str:
    """A Latin-script word inside a CJK cue list."""
    return f"{LB}{word}{LA}"


_COT_CJK = [latin(r"chain[\s-]*of[\s-]*thoughts?"), latin(r"cots?")]

TRACE_LANGS: dict[str, dict] = {
    "en": {
        "space": True,
        "after": False,
        "sov": False,
        "jargon": [
            *_COT_EN,
            r"scratch[\s-]?pads?",
            r"(?:internal|inner|interior|private|hidden) (?:monologue|dialogue|voice|narration)s?",
            r"reasoning (?:traces?|tokens?|chains?|blocks?|logs?|transcripts?|content|summar(?:y|ies))",
            r"thinking (?:tokens?|traces?|blocks?|content|logs?|budget)",
            r"thought (?:traces?|chains?|logs?|tokens?)",
            r"stream[\s-]of[\s-]consciousness", r"think(?:ing)? (?:out loud|aloud)", r"chains? of reasoning",
            r"(?:hidden|internal|latent|private|concealed) (?:reasoning|thinking|thoughts?|deliberations?)",
            r"extended thinking",
            r"(?:thinking|reasoning|thought) tags?",
        ],
        "plain": [
            r"reasoning",
            r"rationales?",
            r"thought[\s-]process(?:es)?",
            r"thinking[\s-]process(?:es)?",
            r"train of thought",
            r"thinking",
            r"thoughts",
            r"deliberations?",
            r"how (?:you|it|the model) (?:arrived|got|reached|came|derived|decided|worked it out)",
            r"(?:steps|process) (?:you|it|the model) (?:took|followed|used|went through)",
            r"(?:mental|cognitive) (?:steps|process(?:es)?)",
            r"logic behind",
            r"(?:intermediate|internal) (?:steps|calculations?|computations?)",
            r"(?:intermediate |logical )?(?:deductions?|inferences?)", r"considerations?", r"monologue",
            r"thinking steps",
            r"(?:what|everything|all that|whatever) (?:goes|went|passes|passed|happens|happened|runs|ran)"
            r"(?: on)? (?:through|in|inside) (?:your|its|the model'?s) (?:mind|head)",
        ],
        "steps": [r"steps?", r"step[\s-]*by[\s-]*step", r"solution (?:path|process|steps)", r"derivations?",
                  r"working", r"path"],
        "hmod": [
            r"hidden", r"internal", r"inner", r"private", r"secret", r"raw", r"unfiltered", r"unedited",
            r"uncensored", r"unredacted", r"verbatim", r"latent", r"invisible", r"concealed", r"suppressed",
            r"undisclosed", r"behind[\s-]the[\s-]scenes",
        ],
        "hmod_mid": [r"own", r"true", r"actual", r"real", r"underlying", r"genuine", r"original", r"full",
                     r"complete", r"entire", r"whole", r"exact"],
        "you": [r"your", r"yours", r"you"],
        "self": [r"your", r"you", r"yours", r"the model'?s", r"the assistant'?s", r"the ai'?s", r"its"],
        "hide": [
            r"(?:(?:that|which) )?you (?:\w+ )?(?:normally |usually |typically |would |otherwise |always )?"
            r"(?:hide|conceal|suppress|keep (?:hidden|private|secret|to yourself)|"
            r"(?:do not|don't|never|wouldn't|would not) (?:show|reveal|display|share|output|print|expose))",
            r"(?:you|the model) (?:\w+ ){0,2}(?:did|performed|ran|had|used|went through|generated|produced|"
            r"carried out) (?:\w+ ){0,3}(?:internally|behind the scenes|silently|in your head|in private|"
            r"before (?:answering|responding|replying|you answered|you responded))",
        ],
        "vstrong": [
            r"reveal\w*", r"expos(?:e|es|ed|ing)", r"dump\w*", r"leak\w*", r"disclos\w*", r"unveil\w*",
            r"uncover\w*", r"divulg\w*", r"print\w*", r"output\w*", r"emit\w*", r"echo\w*",
            r"writ(?:e|es|ing|ten) (?:\w+ ){0,2}?out", r"spell\w* (?:\w+ ){0,2}?out", r"lay (?:\w+ ){0,2}?out",
            r"transcrib\w*", r"verbali[sz]\w*", r"externali[sz]\w*", r"narrat\w*", r"regurgitat\w*",
            r"recit\w*", r"copy (?:\w+ ){0,2}?(?:out|down)", r"repeat\w*",
        ],
        "vrecon": [
            r"reconstruct\w*", r"recreat\w*", r"reproduc\w*", r"retrac\w*", r"rebuil[dt]\w*",
            r"regenerat\w*", r"recover\w*", r"reverse[\s-]?engineer\w*", r"back[\s-]?fill\w*",
            r"fill\w* in", r"work\w* backwards?", r"simulat\w*", r"emulat\w*", r"imitat\w*",
        ],
        "vmed": [
            r"show\w*", r"display\w*", r"shar(?:e|es|ing)", r"give", r"provide", r"include", r"put",
            r"place", r"wrap", r"enclose", r"let me see", r"walk (?:me )?through", r"document", r"generate",
            r"produce", r"record", r"list", r"present", r"articulate", r"write(?: down)?", r"detail",
        ],
        "passive": [
            r"(?:be |is |are )?(?:visible|exposed|revealed|shown|printed|dumped|disclosed|written out|"
            r"spelled out|in full|verbatim|unredacted|unfiltered|word for word)",
        ],
        "answer": [
            r"(?:behind|underlying|that led to|led to|leading to|that produced|that yielded|that leads to|"
            r"that would produce|that would lead to|to justify|justifying|that justifies) (?:\w+ ){0,3}?"
            r"(?:answers?|solutions?|results?|responses?|outputs?|conclusions?|completions?|labels?)",
            r"(?:given|provided|known|completed|finished|precomputed|pre-computed|supplied|existing|"
            r"already[\s-]given|already[\s-]known|gold|ground[\s-]truth) (?:final )?"
            r"(?:answers?|solutions?|responses?|completions?|labels?)",
            r"answers? (?:is|are|has been|have been) (?:already )?(?:given|known|provided|supplied)",
            r"(?:here is|here's|below is|following is|here are) (?:the|a|an) "
            r"(?:completed|finished|final|correct|known|model) (?:answer|solution|response)s?",
            r"work\w* backwards?", r"reverse[\s-]?engineer\w*", r"post[\s-]?hoc", r"after the fact",
            r"as if you had (?:solved|derived|reasoned|thought|worked)",
            # "have the answer" only as a given answer: "to be sure we have the right answer" (a zero-shot
            # chain-of-thought benchmark prompt) asks for a careful solution, not a reconstruction
            r"(?:already )?(?:know|got|been given) (?:the |your |its )?(?:final |correct |right )?answers?",
            r"already have (?:the |your |its )?(?:final |correct |right )?answers?",
            r"have (?:the |your |its )?(?:final|correct) answers?",
            r"(?:i'll|i will|we'll|we will) (?:give|provide|supply|show|tell) (?:you )?(?:the )?"
            r"(?:final |correct |right )?answers?",
            r"(?:to|would|will|could|that would|which would|that will) (?:get|arrive|lead|come) (?:to|at) "
            r"(?:this|that|the|your|its) (?:final |stated |given |correct )?(?:answers?|results?|solutions?)",
            r"(?:stated|given|provided|known|supplied) (?:final )?(?:results?|conclusions?|outputs?)",
            r"(?:would|will|could|should) justify (?:this|that|the|each|every) (?:\w+ )?(?:answers?|results?|labels?)",
            r"connect\w* (?:the )?(?:problem|question|task)(?: statement)? (?:to|with) (?:the |its )?"
            r"(?:stated |given |final )?(?:answers?|results?|solutions?)",
            r"(?:used|needed|take|took|taken) to (?:reach|arrive at|get to|obtain|derive) "
            r"(?:it|that|this|them|the (?:final |correct |given )?answers?)",
        ],
        "pretend": [
            r"as (?:if|though) (?:you were|you're|you are) (?:solving|seeing|doing|encountering|working on|"
            r"thinking about) (?:it|this|that|the \w+)",
            r"(?:would have|would've|must have|might have) (?:used|followed|taken|gone through|had)",
            r"pretend (?:that )?you (?:have not|haven't|had not|hadn't|did not|didn't|do not|don't) (?:yet )?"
            r"(?:seen|been given|know|known|read) (?:the |its |this )?(?:final )?answer",
        ],
        "verbatim": [
            r"verbatim", r"word for word", r"unabridged", r"in (?:full|its entirety)",
            r"(?:without|do not|don't|never|no) (?:skipping|omitting|summari[sz]ing|abbreviating|condensing|"
            r"truncating|leaving (?:anything )?out|skip|omit|summari[sz]e|abbreviate|condense|truncate)",
            r"exactly as (?:you|it was|they were) (?:generated|produced|thought|wrote|written|had it)",
            r"exactly as (?:the |your )?thoughts? (?:occurred|came|happened|arose)",
            r"(?:including|include|with|keep) (?:all |every |any )?(?:the |your )?(?:dead[\s-]ends?|false starts?|"
            r"wrong turns?|backtracking|hesitations?|abandoned (?:attempts?|ideas?))",
        ],
        "answer_weak": [r"answer (?:is|was)", r"answer\s*[:=]"],
        "weak": [
            r"step[\s-]*by[\s-]*step", r"let'?s think", r"think (?:carefully|hard|deeply|it through|through|"
            r"about it|logically|step)", r"show (?:your|all (?:of )?your|the) (?:work|working|steps|calculations?)",
            r"explain (?:your|the) (?:answer|reasoning|thinking|thought process|steps|logic|choice)",
            r"(?:final|short) answer", r"before (?:giving|answering|you answer|providing|stating|writing|"
            r"responding)", r"in detail", r"detailed (?:explanation|solution|steps|reasoning)",
            r"(?:reason|work) (?:it )?(?:out|through)", r"justify your answer", r"\\boxed",
        ],
        "mode": [
            r"(?:debug|debugging|developer|dev|diagnostic|diagnostics|maintenance|verbose|transparency|"
            r"audit|admin|administrator|god|unrestricted|unfiltered|introspection|sudo|jailbreak|"
            r"jailbroken|dan|glass[\s-]?box|white[\s-]?box|x[\s-]?ray) mode",
            r"system (?:prompt )?override",
            r"ignore (?:all |any )?(?:of )?(?:your |the )?(?:previous|prior|above|earlier) instructions",
        ],
        "mode_self": [
            r"(?:you are|you're|you will be|you'll be|you have been|you've been|you're now|you are now) "
            r"(?:now )?(?:in|operating in|running in|switched to|entering|in a) (?:\w+ ){0,2}?mode",
            r"(?:debug|developer|dev|diagnostic|verbose|admin|god|transparency|introspection) mode "
            r"(?:is )?(?:enabled|activated|engaged|on|unlocked)",
            r"(?:switch|put|set) yourself (?:in|into|to)",
        ],
        "purpose": [
            r"(?:training|fine[\s-]?tuning|finetuning|distillation|sft|rlhf|dpo|reward[\s-]model|"
            r"preference|instruction[\s-]tuning) (?:data(?:sets?)?|corpus|corpora|examples|samples|pairs)",
            r"(?:to|for) (?:train|fine[\s-]?tune|finetune|distill)\w* (?:a |our |my |the )?(?:\w+ )?"
            r"(?:model|llm|student)",
            r"student model", r"teacher model",
            r"synthetic (?:reasoning|cot|chain[\s-]of[\s-]thought|thinking) ",
        ],
    },
    "zh": {
        "space": False,
        "after": False,
        "sov": True,  # 把推理过程写出来: the object often comes first
        "jargon": [
            *_COT_CJK, "思维链", "思考链", "推理链", "链式思考", "链式思维", "链式推理", "思维轨迹", "推理轨迹",
            "思考轨迹", "推理痕迹", "思考痕迹", "推理记录", "思考记录", "推理token", "思考token", "推理令牌",
            "思考令牌", "草稿本", "草稿区", "草稿纸", "草稿内容", "内心独白", "内部独白", "内心活动", "隐藏推理",
            "内部推理", "内部思考", "隐藏思考", "隐式推理", "潜在推理", "隐藏的思考", "隐藏的推理", "思考标签",
            "推理标签", "深度思考内容", "思考内容",
        ],
        "plain": ["推理过程", "思考过程", "思维过程", "思索过程", "思路", "推导过程", "推导思路", "解题思路",
                  "推理步骤", "思考步骤",
                  "心路历程", "决策过程", "推理", "推理内容", "想法", "论证过程", "思维", "考虑过程", "分析过程",
                  "中间步骤", "中间过程", "如何得出", "怎么得出", "怎样得出", "如何得到", "怎么得到", "是怎么想的",
                  "怎么想的",],
        "steps": ["步骤", "过程", "每一步", "每个步骤"],
        "hmod": [
            "内部", "内在", "隐藏", "隐含", "隐秘", "私密", "私下", "秘密", "原始", "未经过滤", "未过滤", "未删减",
            "未经删减", "未经编辑", "幕后", "后台", "潜在", "不可见", "不公开", "未公开", "不为人知", "逐字",
            "原封不动",
        ],
        "hmod_mid": ["真实", "完整", "全部", "所有", "底层", "自己", "本来", "实际", "原本", "详尽", "完全"],
        "you": ["你的", "您的", "你自己的", "你在", "你"],
        "self": ["你", "您", "模型", "助手", latin("ai")],
        "hide": [
            "你(?:通常|平时|一般|本来)?(?:会)?(?:隐藏|不(?:会)?(?:展示|显示|公开|输出|透露|给出))的",
            "你在回答(?:之前|前|时)(?:进行|做|完成|经历)的",
            "你(?:在)?回答[^。！？!?\n]{0,12}?时(?:的|所)",
            "你(?:在)?(?:后台|内部|心里|脑海中|脑子里|暗中)(?:进行|做|完成|经历)的",
        ],
        "vstrong": ["写出", "写下", "写全", "完整写出", "详细写出", "逐字写出", "输出", "打印", "暴露", "揭示",
                    "揭露", "公开", "披露", "泄露", "透露", "吐出", "导出", "原样", "复述", "转储", latin("dump"),
                    "展示出", "显示出", "呈现出", "说出", "列出来", "完整呈现", "全部展示",],
        "vrecon": [
            "还原", "重建", "重构", "复原", "复现", "重现", "反推", "倒推", "逆推", "逆向", "补全", "补出", "补写",
            "重新生成", "重新构建", "模拟出", "模拟",
        ],
        "vmed": ["展示", "显示", "呈现", "给出", "提供", "分享", "列出", "写", "放在", "放到", "放入", "包含", "记录",
                 "告诉我", "发给我"],
        "passive": [
            "写出来", "写下来", "展示出来", "显示出来", "呈现出来", "打印出来", "输出出来", "暴露出来", "公开出来",
            "说出来", "都写出", "全部写出", "完整地?写", "完整输出", "一字不差", "原封不动", "全部输出",
        ],
        "answer": ["已给出的答案", "已经给出的答案", "给定(?:的)?答案", "给定(?:的)?结果", "已知(?:的)?答案",
                   "已知(?:的)?结果", "已有(?:的)?答案", "现成(?:的)?答案", "参考答案", "标准答案", "上述答案",
                   "答案已经", "答案已知", "得出(?:这个|该|此|上述|以下|这一)", "得到(?:这个|该|此|上述|以下|这一)",
                   "推出(?:这个|该|此)", "导出(?:这个|该|此)",
                   "(?:这个|该|此)(?:结论|结果|回答)(?:背后|是怎么|是如何)", "背后的(?:推理|思考|逻辑|思路)",
                   "事后", "反推", "倒推",],
        "answer_weak": ["答案是", "答案为", "答案[:：]", "最终答案", "正确答案"],
        "weak": ["逐步", "一步一步", "一步步", "分步", "按步骤", "详细解释", "仔细思考", "认真思考", "请思考",
                 "先思考", "深入思考", "给出答案前", "回答之前", "回答前", "解题过程", "解题步骤", "解题思路",
                 "详细步骤", "详细过程", "写出过程", "说明理由", "解释原因",],
        "mode": ["调试模式", "开发者模式", "开发模式", "诊断模式", "维护模式", "管理员模式", "上帝模式", "越狱模式",
                 "无限制模式", "透明模式", "审计模式", "详细模式", "内省模式", LB + "debug模式", LB + "dev模式",
                 "越狱",],
        "mode_self": [
            "你(?:现在)?(?:已)?(?:经)?(?:处于|进入|进入了|切换到|切换至|运行在|工作在)[^。！？!?\n]{0,8}模式",
            "(?:调试|开发者|诊断|管理员|上帝|透明)模式(?:已)?(?:开启|启用|激活|生效|打开)",
            "忽略(?:之前|以上|前面|先前|所有)(?:的)?(?:所有)?(?:指令|指示|规则|设定)",
        ],
        "purpose": ["训练数据", "训练集", "微调数据", "蒸馏", "数据集", "语料", "偏好数据", "奖励模型",
                    LB + "sft数据", latin("rlhf"), "学生模型", "教师模型", "用于训练", "用来训练"],
    },
    "ja": {
        "space": False,
        "after": False,
        "sov": True,
        "jargon": [*_COT_CJK, "思考の連鎖", "思考連鎖", "チェーンオブソート", "内部推論", "内部の推論",
                   "隠れた推論", "隠された推論", "内なる独白", "内的独白", "内部独白", "思考トークン",
                   "推論トークン", "スクラッチパッド", "思考ログ", "推論ログ", "思考の痕跡", "推論の痕跡",],
        "plain": ["推論過程", "推論の過程", "思考過程", "思考の過程", "思考プロセス", "推論プロセス", "考えた過程",
                  "考え方", "思考の流れ", "推論の流れ", "推論", "推論の手順", "どのように(?:その)?(?:答え|結論)に"],
        "steps": ["手順", "ステップ", "過程", "途中式"],
        "hmod": ["内部", "隠れた", "隠された", "隠している", "秘密の", "非公開の", "生の", "未加工の",
                 "フィルター?なし", "そのままの", "一字一句"],
        "hmod_mid": ["本当の", "実際の", "完全な", "すべての", "全部の", "あなた自身の"],
        "you": ["あなたの", "君の", "お前の"],
        "self": ["あなた", "君", "お前", "モデル", "アシスタント", latin("ai")],
        "hide": ["(?:普段|通常|いつも)(?:は)?(?:隠|見せな|表示しな|出力しな)"],
        "vstrong": ["書き出", "出力", "公開", "明かし", "明かして", "暴露", "開示", "漏ら", "ダンプ", "そのまま書",
                    "全て書", "すべて書", "吐き出"],
        "vrecon": ["再構築", "再構成", "再現", "復元", "逆算", "再生成", "組み立て直"],
        "vmed": ["示し", "示して", "見せ", "表示", "書い", "書いて", "教え", "共有", "含め", "入れ"],
        "passive": [],
        "answer": ["与えられた答え", "与えられた解答", "既知の答え", "既存の答え",
                   "この解答", "この結論", "この回答", "答えに至る", "答えにたどり着", "結論に至る"],
        "answer_weak": ["正解は", "答え[:：は]", "最終的な答え"],
        "weak": ["ステップバイステップ", "段階的に", "一歩ずつ", "順を追って", "順序立てて", "詳しく説明",
                 "よく考えて"],
        "mode": ["デバッグモード", "開発者モード", "開発モード", "診断モード", "メンテナンスモード", "管理者モード",
                 "脱獄"],
        "mode_self": ["(?:デバッグ|開発者|診断|管理者)モード(?:が|を)?(?:有効|オン|起動|開始)"],
        "purpose": ["学習データ", "訓練データ", "トレーニングデータ", "蒸留", "ファインチューニング", "データセット"],
    },
    "ko": {
        "space": False,  # particles attach to nouns (과정을), so match substrings
        "after": False,
        "sov": True,
        "jargon": [*_COT_CJK, "사고의 사슬", "사고 사슬", "생각의 사슬", "체인 오브 소트", "내부 추론",
                   "숨겨진 추론", "숨은 추론", "내적 독백", "내부 독백", "사고 토큰", "추론 토큰", "스크래치패드",
                   "추론 흔적", "사고 흔적",],
        "plain": ["추론 과정", "사고 과정", "생각 과정", "사고과정", "추론과정", "생각의 흐름", "사고의 흐름",
                  "추론", "추론 단계", "어떻게 (?:그|이) ?(?:답|결론)에 도달"],
        "steps": ["단계", "과정", "풀이"],
        "hmod": ["내부", "숨겨진", "숨은", "감춰진", "비밀", "비공개", "원시", "필터링되지 않은", "날것의",
                 "그대로의", "있는 그대로"],
        "hmod_mid": ["진짜", "실제", "완전한", "전체", "모든", "당신 자신의"],
        "you": ["당신의", "너의", "네"],
        "self": ["당신", "너의", "네", "모델", "어시스턴트", latin("ai")],
        "hide": ["(?:평소|보통|원래)(?:에)?(?:는)? ?(?:숨기|보여주지 않|공개하지 않)"],
        "vstrong": ["작성해", "적어", "써 ?줘", "써 ?주", "출력", "공개", "드러내", "노출", "덤프", "그대로 보여",
                    "전부 보여", "모두 보여", "털어놓"],
        "vrecon": ["재구성", "재구축", "재현", "복원", "역추적", "역으로 추론", "다시 생성"],
        "vmed": ["보여", "표시", "알려", "공유", "포함", "넣어"],
        "passive": [],
        "answer": ["주어진 답", "주어진 정답", "기존 답",
                   "답에 도달", "결론에 도달"],
        "answer_weak": ["정답은", "최종 답"],
        "weak": ["단계별", "단계적으로", "차근차근", "한 단계씩", "자세히 설명", "잘 생각"],
        "mode": ["디버그 모드", "디버깅 모드", "개발자 모드", "진단 모드", "관리자 모드", "탈옥"],
        "mode_self": ["(?:디버그|개발자|진단|관리자) 모드(?:가|를)? ?(?:활성화|켜|시작)"],
        "purpose": ["학습 데이터", "훈련 데이터", "증류", "파인튜닝", "데이터셋"],
    },
    "ru": {
        "space": True,
        "after": False,
        "sov": True,  # free word order: "свои рассуждения распиши"
        "jargon": [
            *_COT_EN, r"цепочк\w* (?:рассуждени\w*|мысл\w*)", r"внутренн\w* монолог\w*", r"внутренн\w* рассуждени\w*",
            r"скрыт\w* рассуждени\w*", r"черновик\w*", r"токен\w* (?:рассуждени\w*|мышлени\w*)",
        ],
        "plain": [r"рассуждени\w*", r"мыслительн\w* процесс\w*", r"процесс\w* (?:мышлени\w*|рассуждени\w*)",
                  r"мышлени\w*", r"ход\w* мысл\w*", r"мысл[иья]\w*",
                  r"как (?:ты|вы) (?:пришл\w*|пришёл|пришел|получил\w*)"],
        "steps": [r"шаг\w*", r"этап\w*", r"решени\w*"],
        "hmod": [r"скрыт\w*", r"внутренн\w*", r"тайн\w*", r"секретн\w*", r"необработанн\w*", r"нефильтрованн\w*",
                 r"сыр\w*", r"дословн\w*", r"невидим\w*"],
        "hmod_mid": [r"сво\w*", r"собственн\w*", r"настоящ\w*", r"реальн\w*", r"полн\w*", r"весь", r"всё", r"все"],
        "you": [r"тво\w*", r"ваш\w*", r"сво[иейёюяхм]\w*"],
        "self": [r"тво\w*", r"ваш\w*", r"сво[иейёюяхм]\w*", r"ты", r"вы", r"модел\w*", r"ассистент\w*"],
        "hide": [r"(?:которы\w*|что) (?:ты|вы) (?:обычно )?(?:скрыва\w*|не показыва\w*|не раскрыва\w*)"],
        "vstrong": [r"выведи\w*", r"выпиши\w*", r"распиши\w*", r"раскрой\w*", r"раскрыть", r"изложи\w*",
                    r"опубликуй\w*", r"вывести", r"дамп\w*", r"выложи\w*", r"запиши\w*"],
        "vrecon": [r"восстанов\w*", r"воспроизвед\w*", r"воспроизвести", r"воссозда\w*", r"реконструир\w*",
                   r"перестро\w*"],
        "vmed": [r"покажи\w*", r"показать", r"напиши\w*", r"дай", r"дайте", r"опиши\w*", r"поделись\w*",
                 r"приведи\w*", r"включи\w*"],
        "passive": [],
        "answer": [r"(?:данн|готов|известн|указанн|приведённ|приведенн|имеющ)\w* (?:\w+ )?ответ\w*",
                   r"(?:к )?этому ответу", r"стоящ\w* за (?:этим )?(?:ответ\w*|решени\w*)",
                   r"привел\w* к (?:этому )?(?:ответу|решению)", r"привод\w* к (?:нему|этому|ответу|решению)",
                   r"(?:ответ|решение) (?:уже )?(?:известен|известно|дан|дано|получен\w*)", r"уже известн\w*",],
        "answer_weak": [r"ответ\s*[:=]", r"правильный ответ", r"окончательный ответ"],
        "weak": [r"шаг за шагом", r"пошагово", r"поэтапно", r"подробно объясни\w*", r"подумай\w*"],
        "mode": [r"режим\w* (?:отладки|разработчика|диагностики|администратора|бога)", r"отладочн\w* режим\w*",
                 r"джейлбрейк\w*"],
        "mode_self": [r"(?:ты|вы) (?:теперь |сейчас )?(?:в|находишься в|работаешь в) (?:\w+ )?режим\w*",
                      r"игнорируй\w* (?:все )?(?:предыдущие|прошлые) (?:инструкции|указания)"],
        "purpose": [r"обучающ\w* (?:данн\w*|выборк\w*)", r"датасет\w*", r"дистилляц\w*",
                    r"для обучения (?:\w+ )?модел\w*", r"дообучени\w*"],
    },
    "es": {
        "space": True,
        "after": True,
        "sov": False,
        "jargon": [
            *_COT_EN, r"cadena de pensamientos?", r"cadena de razonamientos?", r"mon[oó]logo interno",
            r"tokens de razonamiento", r"trazas? de razonamiento",
        ],
        "plain": [r"razonamientos?", r"proceso (?:de|del) (?:pensamiento|razonamiento)", r"pensamientos?",
                  r"c[oó]mo (?:llegaste|lleg[oó]|has llegado)",
                  r"(?:todo )?lo que (?:piensas|pensaste|razonas|vas pensando)"],
        "steps": [r"pasos?", r"proceso", r"soluci[oó]n"],
        "hmod": [r"intern[oa]s?", r"ocult[oa]s?", r"privad[oa]s?", r"secret[oa]s?", r"sin filtrar", r"en bruto",
                 r"literal(?:es)?", r"textual(?:es)?", r"escondid[oa]s?"],
        "hmod_mid": [r"propi[oa]s?", r"verdader[oa]s?", r"real(?:es)?", r"complet[oa]s?", r"[ií]ntegr[oa]s?"],
        "you": [r"tus?", r"vuestr[oa]s?"],
        "self": [r"tus?", r"su", r"sus", r"vuestr[oa]s?", r"del modelo", r"del asistente"],
        "hide": [r"que (?:normalmente |usualmente )?(?:ocultas|escondes|no muestras|no revelas)"],
        "vstrong": [r"revel\w*", r"exp[oó]n\w*", r"exponer", r"imprim\w*", r"vuelca\w*", r"volcar", r"divulg\w*",
                    r"transcrib\w*", r"escribe (?:\w+ )?(?:todo|completo|[ií]ntegro|literalmente)"],
        "vrecon": [r"reconstru\w*", r"recre[ae]\w*", r"reproduc\w*", r"regener\w*", r"recuper\w*"],
        "vmed": [r"muestr\w*", r"mostrar", r"escrib\w*", r"dame", r"da", r"proporciona\w*", r"comparte\w*",
                 r"incluy\w*", r"pon", r"detalla\w*"],
        "passive": [],
        "answer": [
            r"respuesta (?:ya )?(?:dada|proporcionada|conocida)", r"detr[aá]s de (?:esta|la|dicha) respuesta",
            r"que (?:llev[oó]|lleva|conduce|condujo) a (?:esta|la|dicha) (?:respuesta|soluci[oó]n|conclusi[oó]n)",
        ],
        "answer_weak": [r"la respuesta (?:es|correcta)", r"respuesta\s*:"],
        "weak": [r"paso a paso", r"piensa (?:con cuidado|detenidamente|bien)", r"explica tu respuesta",
                 r"muestra tu trabajo", r"antes de (?:dar|responder)"],
        "mode": [r"modo (?:de )?(?:depuraci[oó]n|desarrollador|debug|diagn[oó]stico|administrador|dios|"
                 r"sin restricciones)"],
        "mode_self": [r"(?:ahora )?est[aá]s (?:ahora )?en (?:el )?modo",
                      r"ignora (?:todas )?las instrucciones anteriores"],
        "purpose": [r"datos de entrenamiento", r"conjunto de datos", r"destilaci[oó]n",
                    r"para entrenar (?:un|nuestro|mi) modelo", r"ajuste fino"],
    },
    "fr": {
        "space": True,
        "after": True,
        "sov": False,
        "jargon": [
            *_COT_EN, r"cha[iî]nes? de (?:pens[ée]es?|raisonnements?)", r"monologue int[ée]rieur",
            r"jetons de raisonnement", r"traces? de raisonnement",
        ],
        "plain": [r"raisonnements?", r"processus de (?:pens[ée]e|r[ée]flexion|raisonnement)", r"r[ée]flexions?",
                  r"pens[ée]es", r"comment (?:tu es|vous [êe]tes) arriv[ée]"],
        "steps": [r"[ée]tapes?", r"d[ée]marche", r"processus"],
        "hmod": [r"internes?", r"cach[ée]e?s?", r"priv[ée]e?s?", r"secr[eè]te?s?", r"brut(?:e|es|s)?",
                 r"non filtr[ée]e?s?", r"mot pour mot", r"textuel\w*", r"int[ée]rieur\w*"],
        "hmod_mid": [r"propres?", r"v[ée]ritables?", r"r[ée]el(?:le)?s?", r"complet\w*", r"enti(?:er|[eè]re)s?"],
        "you": [r"ton", r"ta", r"tes", r"votre", r"vos"],
        "self": [r"ton", r"ta", r"tes", r"votre", r"vos", r"du mod[eè]le", r"de l'assistant"],
        "hide": [r"que (?:tu|vous) (?:\w+ )?(?:caches|cachez|ne montres pas|ne montrez pas|gardes secret)"],
        "vstrong": [r"r[ée]v[eè]l\w*", r"expos\w*", r"divulgu\w*", r"affich\w*", r"imprim\w*", r"d[ée]voil\w*",
                    r"retranscri\w*", r"transcri\w*"],
        "vrecon": [r"reconstitu\w*", r"reconstrui\w*", r"reconstru\w*", r"recr[ée]\w*", r"reprodui\w*",
                   r"r[ée]g[ée]n[eè]r\w*", r"retrouv\w*"],
        "vmed": [r"montre\w*", r"[ée]cri\w*", r"donne\w*", r"fourni\w*", r"partage\w*", r"inclu\w*",
                 r"d[ée]taill\w*", r"mets", r"mettez"],
        "passive": [],
        "answer": [
            r"(?:la|une|cette) r[ée]ponse (?:d[ée]j[aà] )?(?:donn[ée]e|fournie|connue)",
            r"r[ée]ponse d[ée]j[aà] (?:donn[ée]e|connue)", r"derri[eè]re (?:cette|la) r[ée]ponse",
            r"qui (?:m[eè]ne|a men[ée]|conduit|a conduit) [aà] (?:cette|la) (?:r[ée]ponse|solution|conclusion)",
        ],
        "answer_weak": [r"la r[ée]ponse (?:est|correcte)", r"r[ée]ponse\s*:"],
        "weak": [r"[ée]tape par [ée]tape", r"r[ée]fl[ée]chis (?:bien|attentivement)", r"explique ta r[ée]ponse",
                 r"justifie ta r[ée]ponse", r"avant de r[ée]pondre"],
        "mode": [r"mode (?:de )?(?:d[ée]bogage|d[ée]veloppeur|debug|diagnostic|administrateur|maintenance|dieu|"
                 r"sans restriction)"],
        "mode_self": [r"(?:tu es|vous [êe]tes) (?:maintenant |d[ée]sormais )?en mode",
                      r"ignore (?:toutes )?les instructions pr[ée]c[ée]dentes"],
        "purpose": [r"donn[ée]es d'entra[iî]nement", r"jeu de donn[ée]es", r"distillation",
                    r"pour entra[iî]ner (?:un|notre|mon) mod[eè]le", r"affinage"],
    },
    "de": {
        "space": True,
        "after": False,
        "sov": True,  # infinitive/separable verbs go last: "deinen Gedankengang offenlegen"
        "jargon": [
            *_COT_EN, r"gedankenkette\w*", r"denkkette\w*", r"innere\w* monolog\w*", r"notizblock", r"schmierzettel",
            r"denk-?tokens?",
        ],
        "plain": [r"gedankeng[aä]ng\w*", r"denkprozess\w*", r"denkweg\w*", r"überlegung\w*", r"argumentation\w*",
                  r"begründung\w*", r"gedanken", r"schlussfolgerung\w*", r"wie (?:du|sie) (?:darauf )?gekommen"],
        "steps": [r"schritt\w*", r"lösungsweg\w*", r"rechenweg\w*"],
        "hmod": [r"intern\w*", r"innere\w*", r"verborgen\w*", r"versteckt\w*", r"geheim\w*", r"privat\w*",
                 r"ungefiltert\w*", r"roh\w*", r"unbearbeitet\w*", r"wörtlich\w*", r"unsichtbar\w*"],
        "hmod_mid": [r"eigen\w*", r"wahr\w*", r"tatsächlich\w*", r"echt\w*", r"vollständig\w*", r"ganz\w*",
                     r"gesamt\w*"],
        "you": [r"dein\w*", r"ihr\w*"],
        "self": [r"dein\w*", r"ihr\w*", r"du", r"des modells", r"des assistenten"],
        "hide": [r"(?:den|die|das) (?:du|sie) (?:normalerweise |sonst )?(?:verbirgst|versteckst|nicht zeigst)"],
        "vstrong": [r"offenleg\w*", r"offen ?legen", r"enthüll\w*", r"ausgeben", r"gib (?:\w+ ){0,4}?aus",
                    r"aufschreib\w*", r"ausschreib\w*", r"schreib\w* (?:\w+ ){0,4}?(?:aus|auf|nieder)",
                    r"preisgeben", r"gib (?:\w+ ){0,4}?preis", r"verrat\w*", r"dump\w*",
                    r"druck\w* (?:\w+ ){0,3}?aus"],
        "vrecon": [r"rekonstruier\w*", r"reproduzier\w*", r"wiederherstell\w*", r"stell\w* (?:\w+ ){0,4}?wieder her",
                   r"nachbau\w*", r"regenerier\w*"],
        "vmed": [r"zeig\w*", r"schreib\w*", r"gib", r"geben", r"teil\w*", r"nenne\w*", r"liste\w*", r"beschreib\w*"],
        "passive": [],
        "answer": [r"(?:die|eine|diese) (?:gegebene|vorgegebene|bekannte|fertige) (?:antwort|lösung)",
                   r"hinter diese\w* antwort", r"(?:zu|auf) diese\w* (?:antwort|lösung|ergebnis) (?:geführt|führt)",],
        "answer_weak": [r"die (?:richtige )?antwort (?:ist|lautet)", r"antwort\s*:"],
        "weak": [r"schritt für schritt", r"schrittweise", r"denk\w* (?:sorgfältig|genau) nach",
                 r"erkläre deine antwort", r"begründe deine antwort", r"zeige? deinen rechenweg"],
        "mode": [r"(?:debug|debugging|entwickler|diagnose|wartungs|admin|administrator|gott)-?modus", r"jailbreak"],
        "mode_self": [r"(?:du bist|sie sind) (?:jetzt |nun )?im \w*-?modus",
                      r"ignorier\w* (?:alle )?(?:vorherigen|bisherigen) (?:anweisungen|instruktionen)"],
        "purpose": [r"trainingsdaten", r"datensatz\w*", r"destillation",
                    r"zum trainieren (?:eines|unseres|meines) modells", r"feinabstimmung", r"fine-?tuning"],
    },
    "pt": {
        "space": True,
        "after": True,
        "sov": False,
        "jargon": [
            *_COT_EN, r"cadeia de pensamentos?", r"cadeia de racioc[ií]nios?", r"mon[oó]logo interno",
            r"tokens de racioc[ií]nio",
        ],
        "plain": [r"racioc[ií]nios?", r"processo de (?:pensamento|racioc[ií]nio)", r"pensamentos",
                  r"como (?:voc[eê] )?chegou"],
        "steps": [r"passos?", r"etapas?", r"processo", r"solu[cç][aã]o"],
        "hmod": [r"intern[oa]s?", r"ocult[oa]s?", r"escondid[oa]s?", r"privad[oa]s?", r"secret[oa]s?", r"brut[oa]s?",
                 r"sem filtro", r"literal"],
        "hmod_mid": [r"pr[oó]pri[oa]s?", r"verdadeir[oa]s?", r"rea(?:l|is)", r"complet[oa]s?", r"inteir[oa]s?"],
        "you": [r"seus?", r"suas?", r"teus?", r"tuas?"],
        "self": [r"seus?", r"suas?", r"teus?", r"tuas?", r"do modelo", r"do assistente"],
        "hide": [r"que voc[eê] (?:normalmente )?(?:esconde|oculta|n[aã]o mostra)"],
        "vstrong": [r"revel\w*", r"exponh\w*", r"expor", r"divulg\w*", r"imprim\w*", r"despej\w*", r"transcrev\w*"],
        "vrecon": [r"reconstru\w*", r"recri\w*", r"reproduz\w*", r"regener\w*", r"recuper\w*"],
        "vmed": [r"mostr\w*", r"escrev\w*", r"d[eê]", r"forne[cç]a\w*", r"compartilh\w*", r"inclu\w*", r"detalh\w*",
                 r"coloque"],
        "passive": [],
        "answer": [
            r"(?:a|uma|esta|essa) resposta (?:j[aá] )?(?:dada|fornecida|conhecida)",
            r"resposta j[aá] (?:dada|conhecida)", r"por tr[aá]s (?:desta|dessa|da) resposta",
            r"que (?:levou|leva|conduziu|conduz) [aà] (?:esta|essa|a) (?:resposta|solu[cç][aã]o|conclus[aã]o)",
        ],
        "answer_weak": [r"a resposta (?:[ée]|correta)", r"resposta\s*:"],
        "weak": [r"passo a passo", r"pense (?:com cuidado|cuidadosamente)", r"explique sua resposta",
                 r"mostre seu trabalho", r"antes de responder"],
        "mode": [r"modo (?:de )?(?:depura[cç][aã]o|desenvolvedor|debug|diagn[oó]stico|administrador|deus|"
                 r"sem restri[cç][oõ]es)"],
        "mode_self": [r"(?:agora )?voc[eê] est[aá] (?:agora )?(?:no|em) modo",
                      r"ignore (?:todas )?as instru[cç][oõ]es anteriores"],
        "purpose": [r"dados de treinamento", r"conjunto de dados", r"destila[cç][aã]o",
                    r"para treinar (?:um|nosso|meu) modelo", r"ajuste fino"],
    },
}

# Reasoning-named tags and fields: <thinking>, [reasoning], 《思考》, "chain_of_thought": ...
TAG_NAMES = [
    r"think", r"thinking", r"thought", r"thoughts", r"reasoning", r"reason", r"scratchpad", r"scratch_pad",
    r"cot", r"chain_of_thought", r"chain-of-thought", r"inner_monologue", r"internal_monologue", r"monologue",
    r"inner_thoughts", r"internal_thoughts", r"hidden_reasoning", r"internal_reasoning", r"reflection",
    r"rationale", r"deliberation", r"思考", r"推理", r"思维链", r"思考过程", r"推理过程", r"考え", r"思考過程",
    r"추론", r"생각", r"рассуждение", r"размышление", r"razonamiento", r"raisonnement", r"gedanken",
    r"racioc[ií]nio", r"pensamientos?", r"pens[ée]es?", r"pensamentos?", r"réflexion", r"überlegungen",
    r"размышлени[ея]", r"рассуждения", r"思路", r"内心独白", r"考察", r"사고",
]
FIELD_NAMES = [
    r"reasoning", r"thinking", r"thoughts", r"chain_of_thought", r"cot", r"scratchpad", r"internal_reasoning",
    r"hidden_reasoning", r"inner_monologue", r"reasoning_trace", r"thought_process", r"推理过程", r"思考过程",
]

# --------------------------------------------------------------------------------------------------------
# Rubric grading: the model used as a reward model or judge. Same form as LLM-as-judge pipelines by
# design: telling them apart is the aggregates' job (who, how many accounts, which payment methods).
# --------------------------------------------------------------------------------------------------------
_RESP = r"(?:responses?|answers?|completions?|outputs?|replies|reply|generations?|candidates?|assistant'?s?|" \
        r"model'?s? (?:response|answer|output)s?|chatbot'?s? (?:response|answer)s?|summar(?:y|ies)|translations?)"
_GRADE_VERB = r"(?:rate|rating|score|scoring|grade|grading|evaluate|evaluating|assess|assessing|judge|judging|" \
              r"rank|ranking|critique|critiquing|mark|annotate|label)(?! of\b)"
_NUM = r"(?:\d+|one|two|three|four|five|seven|ten|hundred)"
_DIM = (
    r"(?:helpfulness|harmlessness|honesty|faithfulness|factuality|coherence|fluency|relevance|relevancy|"
    r"conciseness|instruction[\s-]following|groundedness|toxicity|verbosity|correctness|completeness|accuracy|"
    r"clarity)"
)
_DIM_ZH = r"(?:有用性|有帮助性|无害性|诚实性|准确性|流畅性|相关性|连贯性|完整性|事实性|安全性|简洁性|指令遵循)"

RUBRIC: dict[str, list[str]] = {
    "verb_obj": [
        rf"\b{_GRADE_VERB}\W+(?:\w+\W+){{0,5}}?{_RESP}\b",
        rf"\b{_RESP}\W+(?:\w+\W+){{0,3}}?(?:should be |will be |is to be )?"
        r"(?:rated|scored|graded|evaluated|judged|ranked|assessed)\b",
        r"(?:评分|打分|评估|评价|评判|评定|打个分|给出分数|打出分数)[^。！？!?\n]{0,10}?"
        r"(?:回答|回复|答案|输出|响应|模型|助手|生成|候选)",
        r"(?:回答|回复|答案|输出|响应)[^。！？!?\n]{0,10}?(?:评分|打分|评估|评判|进行评价|的质量)",
        r"\b(?:califica|calificar|punt[uú]a|puntuar|eval[uú]a|evaluar|valora|valorar)\w*\W+(?:\w+\W+){0,4}?"
        r"respuestas?",
        r"\b(?:note|noter|notez|[ée]value|[ée]valuer|[ée]valuez|juge|juger|jugez)\W+(?:\w+\W+){0,4}?r[ée]ponses?",
        r"\b(?:bewerte|bewerten|beurteile|beurteilen|benote|benoten)\w*\W+(?:\w+\W+){0,4}?antwort\w*",
        r"\b(?:оцени|оценить|оцените)\w*\W+(?:\w+\W+){0,4}?ответ\w*",
        r"(?:回答|応答|答え|出力)[^。！？!?\n]{0,10}?(?:評価|採点|点数|スコア)",
        r"(?:답변|응답|출력)[^.!?\n]{0,10}?(?:평가|채점|점수)",
        r"\b(?:avalie|avaliar|classifique|classificar|pontue|pontuar|julgue)\w*\W+(?:\w+\W+){0,4}?respostas?",
    ],
    "scale": [
        rf"\b(?:score|rating|rate|grade|points?|scale|mark|reward)\W+(?:\w+\W+){{0,5}}?(?:from |between |of )?"
        rf"-?{_NUM} ?(?:to|-|–|and|through) ?-?{_NUM}\b",
        r"\bout of (?:5|7|10|100)\b",
        r"/(?<=\w/) ?(?:5|7|10|100)\b",
        r"\blikert\b",
        r"\b\d+[\s-]point scale\b",
        r"[0-9一二三四五六七八九十]+\s*(?:到|至|-|~|～)\s*[0-9一二三四五六七八九十]+\s*分",
        r"满分\s*[0-9十百]+", r"[十百0-9]+分制",
        r"\bdel \d+ al \d+\b", r"\b(?:de|sur) \d+ [aà] \d+\b", r"\bvon \d+ bis \d+\b", r"\bот \d+ до \d+\b",
        r"\d+\s*(?:から|〜|~|-)\s*\d+\s*(?:点|の尺度|段階)", r"\d+\s*(?:에서|부터|~|-)\s*\d+\s*(?:점|까지)",
    ],
    "rubric": [
        r"\brubrics?\b",
        r"\b(?:scoring|grading|evaluation|judging|marking) "
        r"(?:guide|criteria|guidelines|scheme|rubric|instructions|standards?)\b",
        r"评分标准", r"评估标准", r"评价标准", r"评分细则", r"评分规则", r"打分标准", r"评分维度", r"评估维度",
        r"评价维度", r"评分准则", r"评分量表",
        r"\br[uú]bricas?\b", r"\bcriterios de evaluaci[oó]n\b", r"\bgrille d'[ée]valuation\b", r"\bbar[eè]me\b",
        r"\bbewertungs(?:kriterien|raster|schema)\b", r"\bкритери\w* оценк\w*", r"\bcrit[eé]rios de avalia[cç][aã]o\b",
        r"評価基準", r"採点基準", r"ルーブリック", r"평가 기준", r"채점 기준", r"루브릭",
    ],
    "dims": [  # two quality dimensions close together
        rf"\b{_DIM}\b\W+(?:\w+\W+){{0,6}}?{_DIM}\b",
        rf"{_DIM_ZH}[^。！？!?\n]{{0,8}}?{_DIM_ZH}",
    ],
    "pair": [
        r"\bwhich (?:of the (?:two|following|above) )?(?:responses?|answers?|outputs?|completions?|replies|"
        r"assistants?|summaries|translations?|candidates?) (?:is|was|would be) (?:better|best|more helpful|"
        r"preferable|superior|preferred|worse|more accurate|more appropriate)",
        r"\bpairwise\b",
        r"\b(?:preferred|winning|better) (?:response|answer|output|completion)\b",
        r"\bcompare (?:the )?(?:two|both|these|following) (?:responses|answers|outputs|completions)\b",
        r"\bwhich (?:one|of them|of the two|of these)\b(?:\W+\w+){0,8}?\W+prefer\w*",
        r"哪(?:个|一个)(?:回答|回复|答案|输出)?(?:更好|更优|更佳|更合适|更有帮助|更准确|更符合|胜出)", r"更偏好",
        r"两个[^。，！？!?\n]{0,6}?(?:回答|回复|答案|输出)",
        r"成对比较",
        r"\b(?:qu[eé]|cu[aá]l) respuesta es mejor\b", r"\bquelle r[ée]ponse est (?:la )?meilleure\b",
        r"\bwelche antwort ist besser\b", r"\b(?:какой|который) (?:из )?(?:ответ\w*|двух ответов) (?:лучше|предпочт)",
        r"どちらの(?:回答|応答|答え)(?:が|の方が)", r"어느 (?:답변|응답)이 더", r"\bqual resposta [ée] melhor\b",
    ],
    "pair_labels": [
        r"\b(?:response|answer|output|completion|assistant|summary|candidate|reply) (?:a|1)\W+(?:and|or|vs\.?|"
        r"versus)\W+(?:(?:response|answer|output|completion|assistant|summary|candidate|reply) )?(?:b|2)\b",
        r"\[\[(?:a|b|c|tie)\]\]",
        r"\b(?:chosen|rejected) (?:and|vs\.?|or) (?:chosen|rejected)\b",
        r"\b(?:two|both|pair of|these two) (?:\w+ )?(?:completions|responses|answers|outputs|replies|generations|"
        r"summaries|translations)\b",
        r"(?:回答|回复|答案|输出|助手|模型)\s*[a-d1-4甲乙]\s*(?:和|与|还是|或|vs)",
    ],
    "format": [
        r"\b(?:output|return|respond with|reply with|answer with|print) (?:only )?(?:the |a |your )?(?:final )?"
        r"(?:score|rating|grade|verdict|judgement|judgment)s?\b",
        r"\"(?:score|rating|grade|verdict|reward|preference|winner|better_response)\"\s*:",
        r"\b(?:score|rating|grade|verdict)\s*[:=]\s*(?:\[|<|\{|\d)",
        r"\[\[rating\]\]",
        r"\bonly (?:output|return|respond with) (?:the |a )?(?:score|number|rating|letter)\b",
        r"\b(?:reply|respond|answer|output|return) (?:with )?(?:only )?(?:the |a |one |a single )?"
        r"(?:number|score|integer|digit|letter|rating)(?: only)?\b",
        r"\b(?:output|answer|reply|respond|return) (?:with )?(?:only )?[\"'\[(]?(?:1|a)[\"'\])]? or [\"'\[(]?(?:2|b)\b",
        r"\b(?:assign|give|award|provide|produce)\w*\W+(?:\w+\W+){0,3}?(?:score|rating|grade|reward)s?\b",
        r"以json(?:格式)?输出(?:分数|评分)", r"(?:只|仅)输出(?:分数|评分|数字)", r"给出(?:一个)?(?:分数|评分)",
        r"\"(?:分数|评分)\"\s*:",
    ],
    "role": [
        r"\b(?:you are|you're|act as|acting as|serve as|behave as|as) (?:an? |the )?(?:impartial |fair |unbiased |"
        r"expert |strict |careful |objective |neutral |experienced |helpful )*(?:judge|grader|evaluator|rater|"
        r"annotator|reward model|referee|assessor|scorer)\b",
        r"\breward model\b",
        r"\b(?:human|expert|crowd|professional) (?:rater|annotator|labell?er|judge|evaluator)s?\b",
        r"\b(?:reference|gold|ground[\s-]truth|ideal) (?:answer|response|output|solution)s?\b",
        r"\bllm[\s-]as[\s-]a[\s-]judge\b",
        r"\bpreference (?:data|labels?|annotations?)\b",
        r"(?:你是|作为|扮演)(?:一(?:个|名|位))?(?:公正的|客观的|严格的|专业的|资深的)?"
        r"(?:评委|裁判|评估员|评分员|评审员|评估者|评判者|打分员|奖励模型)",
        r"奖励模型", r"偏好数据",
    ],
}

# --------------------------------------------------------------------------------------------------------
# Censorship-safe rewrites: asking for an alternative answer that would pass a censor. The topic list is
# a *modifier* only: asking about Tiananmen, Xinjiang or Taiwan is never evidence by itself.
# --------------------------------------------------------------------------------------------------------
_CENSOR_TARGET = (  # a censor, or China's rules and line: explicit
    r"(?:censor\w*|cac|cyberspace administration|great firewall|gfw|party line|core socialist values|"
    r"propaganda (?:department|guidelines)|chinese (?:laws?|regulations?|regulators?|authorities|government|"
    r"censors?|censorship|rules|officials)|prc (?:laws?|regulations?)|mainland (?:regulations?|rules|censors?|"
    r"authorities|moderators?)|beijing'?s? (?:line|position|narrative)|"
    r"(?:chinese|mainland|prc|weibo|wechat|douyin|bilibili|zhihu) (?:social (?:media )?)?(?:platforms?|apps?|"
    r"sites?|websites?|networks?|content moderators?|moderators?|moderation|review(?:ers)?))"
)
_OFFICIAL_TARGET = (  # an official line or content rules: also plain politics and marketing talk
    r"(?:content (?:review|rules|regulations?|polic(?:y|ies)|controls?)|internet regulations?|"
    r"official (?:government |party |state )?(?:line|position|narrative|stance|view|talking points)|"
    r"government'?s? (?:line|position|narrative|stance|view|guidelines|requirements))"
)
_COMPLY_VERB = (
    r"(?:compl(?:y|ies|iant|iance|ying)|conform\w*|adher\w*|in line|in accordance|consistent|align\w*|"
    r"acceptable|approved|pass\w*|survive\w*|satisf\w*|meet\w*|get past|get through|evade\w*|follow\w*|toe\w*|"
    r"match\w*|echo\w*|stick\w* to|(?:not|without) trigger\w*)"
)
CENSOR: dict[str, list[str]] = {
    "comply": [
        r"\bcensorship[\s-]*(?:compliant|safe|friendly|proof|approved|compatible)\b",
        rf"\b{_COMPLY_VERB}\W+(?:\w+\W+){{0,5}}?{_CENSOR_TARGET}\b",
        r"\b(?:sanitized|sanitised|censored|party[\s-]line|state[\s-]approved|government[\s-]approved|harmonized|"
        r"harmonised|whitewashed|regime[\s-]friendly|beijing[\s-]friendly|ccp[\s-]approved|censor[\s-]proof) "
        r"(?:\w+ )?(?:version|answer|response|alternative|rewrite|variant|narrative|take|framing|wording)\b",
        r"\bsafe for (?:the )?(?:china|chinese|mainland|beijing|prc)\b",
        r"\b(?:beijing|the (?:chinese )?government|the (?:communist )?party|the ccp|the cpc|chinese censors|"
        r"the censors|the authorities|regulators) would "
        r"(?:approve|accept|allow|permit|sign off|not (?:object|censor|block|mind))",
        r"\b(?:won't|wouldn't|will not|would not|doesn't|does not|not) (?:get |be )?(?:censored|blocked|flagged|"
        r"deleted|removed|harmonized|taken down|banned) (?:by|in|on) (?:the )?(?:chinese|china|weibo|wechat|douyin|"
        r"censors?|mainland|great firewall)",
        r"\bavoid\w* (?:\w+ ){0,3}(?:politically )?(?:sensitive|censored|banned|forbidden|taboo) (?:\w+ ){0,2}?"
        r"(?:words?|terms?|topics?|content|keywords?|phrases?|issues?)\b",
        r"符合(?:中国|国家|国内|大陆)?(?:的)?"
        r"(?:审查|审核|监管|法律法规|法规|互联网规定|主旋律|社会主义核心价值观|官方立场|官方口径|政策要求)",
        r"审查要求", r"审核要求", r"能过审", r"过审", r"通过(?:审查|审核)",
        r"(?:不会|不被|避免被)(?:审查|屏蔽|删除|和谐|删帖)",
        r"规避(?:审查|敏感|屏蔽)", r"避开(?:审查|敏感)", r"绕过审查",
        r"政治(?:正确|安全|上可接受|上安全|合规|上正确)的(?:版本|回答|答案|说法|表述)",
        r"(?:和谐|合规|安全|官方认可|政治正确)(?:的)?(?:版本|回答|答案|说法|表述|口径)", r"社会主义核心价值观",
        r"和谐化",
        r"\b(?:compatible|conforme|acorde) con la censura\b", r"\bpol[ií]ticamente (?:aceptable|segur[oa])\b",
        r"\bversi[oó]n (?:censurada|oficialista)\b", r"\bconforme [aà] la censure\b",
        r"\bpolitiquement (?:acceptable|s[uû]r)\b", r"\bversion (?:censur[ée]e|aseptis[ée]e)\b", r"\bzensurkonform\w*",
        r"\bpolitisch (?:akzeptabl|unbedenklich)\w*", r"\bzensierte (?:version|fassung)\b",
        r"(?:соответств\w*|в соответствии с) (?:\w+ ){0,3}?цензур\w*", r"\bполитически (?:приемлем|безопасн)\w*",
        r"пройти цензуру", r"цензурн\w* верси\w*",
        r"検閲(?:に)?(?:準拠|対応|に通る|を通過|を通る)", r"政治的に(?:安全な|問題のない)",
        r"검열(?:을)? ?(?:통과|준수|기준)", r"정치적으로 (?:안전한|문제없는)",
        r"\bcompat[ií]vel com a censura\b", r"\bpoliticamente (?:aceit[aá]vel|segur[oa])\b",
        r"\bvers[aã]o (?:censurada|oficialista)\b",
    ],
    "comply_generic": [
        rf"\b{_COMPLY_VERB}\W+(?:\w+\W+){{0,5}}?{_OFFICIAL_TARGET}\b",
        r"\bpolitically (?:acceptable|safe|compliant|appropriate|sanitized|sanitised|harmless|approved|"
        r"unproblematic)\b",
        r"(?:改成|改为|改写成|换成|按照|符合|遵循|采用|使用)[^。，！？!?\n]{0,4}?(?:官方|政府|党)(?:的)?(?:口径|立场|说法|叙事)",
    ],
    "rewrite": [
        r"\b(?:rewrite|rewrites|rewriting|rewritten|re-write|rephrase\w*|reword\w*|revis\w*|redo|rework\w*|"
        r"paraphras\w*|edit\w*|adjust\w*|modif\w*|soften\w*|sanitiz\w*|sanitis\w*|scrub\w*|alternative\w*|"
        r"alternate|instead|replace\w*|tone (?:it |this )?down)\b",
        r"\b(?:another|different|new|second|separate) (?:version|answer|response|take)\b",
        r"\bversion of\b",
        r"改写", r"重写", r"重新写", r"改成", r"改为", r"修改", r"调整", r"换一种(?:说法|方式|表述)", r"另一个版本",
        r"另一种(?:回答|版本|说法)", r"替代(?:回答|版本|答案)", r"改一下", r"重新表述", r"重新组织", r"淡化", r"弱化",
        r"回避",
        r"\b(?:reescrib\w*|reformul\w*|r[ée][ée]cri\w*|umschreib\w*|umformulier\w*|перепиши\w*|переформулир\w*|"
        r"reescrev\w*)",
        r"書き直", r"言い換え", r"다시 써", r"바꿔 ?써", r"수정해",
    ],
    "answer": [
        r"\b(?:your|the|this|that|above|previous|prior|preceding|following|original|given|earlier|last|below) "
        r"(?:\w+ ){0,2}?(?:answer|response|reply|output|text|paragraph|passage|article|summary|essay|post)\b",
        r"(?:你的|上面的?|上述|以上|之前的?|前面的?|原来的?|刚才的?|下面的?|以下的?|这个|这段|该)"
        r"(?:回答|答案|回复|内容|文字|文本|段落|文章)",
        r"你[^。，！？!?\n]{0,8}?的(?:回答|答案|回复)",
        r"\b(?:esta|la|tu) respuesta\b", r"\b(?:cette|ta|votre) r[ée]ponse\b", r"\b(?:diese|deine) antwort\b",
        r"\b(?:этот|твой|ваш) ответ\b", r"(?:この|その|上の)(?:回答|答え|文章)", r"(?:이|위의?|그) (?:답변|응답|글)",
        r"\b(?:esta|essa|sua) resposta\b",
    ],
    "topic": [
        r"\btiananmen\b", r"\bjune (?:4|4th|fourth)\b", r"\b1989\b", r"\btank man\b", r"\bxinjiang\b",
        r"\buy[gh]urs?\b", r"\buighurs?\b", r"\bre-?education camps?\b", r"\btibet\w*", r"\bdalai lama\b",
        r"\btaiwan\w*", r"\bhong kong\b", r"\bfalun gong\b", r"\bxi jinping\b", r"\bwinnie the pooh\b",
        r"\bcultural revolution\b", r"\bgreat leap forward\b", r"\bliu xiaobo\b", r"\bccp\b",
        r"\bchinese communist party\b", r"\bsouth china sea\b",
        r"天安门", r"六四", r"八九", r"坦克人", r"新疆", r"维吾尔", r"再教育营", r"集中营", r"西藏", r"达赖", r"台湾",
        r"台独", r"香港", r"反送中", r"法轮功", r"习近平", r"文化大革命", r"文革", r"大跃进", r"刘晓波", r"中共",
        r"南海",
        r"天安門", r"ウイグル", r"チベット", r"톈안먼", r"천안문", r"신장", r"위구르", r"티베트", r"대만",
        r"\bтяньаньмэн\w*", r"\bсиньцзян\w*", r"\bуйгур\w*", r"\bтибет\w*", r"\bтайван\w*",
    ],
}

# --------------------------------------------------------------------------------------------------------
# How groups combine. weight: contribution to z, score = 1 - exp(-z). units: how much independent evidence
# the group is worth when deciding how far a score may rise (see ContentConfig.*_caps). A "modifier" group
# (weight and units) only counts once at least half a unit of non-modifier evidence is present: a rewrite
# request, a reference to an answer or a sensitive topic never fire without a censorship-compliance cue.
# --------------------------------------------------------------------------------------------------------
GROUPS: dict[str, dict[str, tuple[float, float, bool]]] = {
    "trace": {
        "object_jargon": (0.35, 0.5, False),
        "object_plain": (0.175, 0.0, False),
        "hidden_self": (0.8, 1.5, False),
        "hidden_other": (0.35, 0.5, False),
        "hidden_mid": (0.2, 0.0, False),
        "expose": (0.5, 1.0, False),
        "reconstruct": (0.55, 1.0, False),
        "show": (0.25, 0.5, False),
        "given_answer": (0.5, 1.0, False),
        "answer_line": (0.12, 0.0, False),
        "stepwise": (0.12, 0.0, False),
        "tag": (0.6, 1.0, False),
        "field": (0.35, 0.5, False),
        "mode": (0.35, 0.5, False),
        "mode_self": (0.6, 1.0, False),
        "purpose": (0.4, 0.5, False),
        "own_jargon": (0.45, 1.0, False),
        "verbatim": (0.3, 0.5, False),
    },
    "rubric": {
        "verb_obj": (0.55, 1.0, False),
        "scale": (0.35, 0.5, False),
        "rubric": (0.5, 1.0, False),
        "dims": (0.3, 0.5, False),
        "pair": (0.7, 1.0, False),
        "pair_labels": (0.4, 0.5, False),
        "format": (0.35, 0.5, False),
        "role": (0.5, 1.0, False),
    },
    "censor": {
        "comply": (0.6, 1.0, False),
        "comply_generic": (0.35, 0.5, False),
        "rewrite": (0.35, 0.5, True),
        "answer": (0.25, 0.5, True),
        "topic": (0.25, 0.0, True),
    },
}

# Groups that restate the same evidence at different strengths: only the strongest present one counts
# ("your hidden reasoning" is both hidden_self and hidden_other).
EXCLUSIVE: dict[str, tuple[tuple[str, ...], ...]] = {
    "trace": (
        ("hidden_self", "own_jargon", "hidden_other", "hidden_mid"),
        ("expose", "reconstruct", "show"),
        ("object_jargon", "object_plain"),
        ("mode_self", "mode"),
        ("given_answer", "answer_line"),
        ("tag", "field"),
    ),
    "rubric": (),
    "censor": (("comply", "comply_generic"),),
}

# --------------------------------------------------------------------------------------------------------
# Task family: English word sets (matched on whole words) and multilingual substrings/phrases.
# --------------------------------------------------------------------------------------------------------
FAMILY_WORDS: dict[str, frozenset[str]] = {
    "coding": words(
        """
        code function class method bug bugs error exception traceback stacktrace compile compiler python
        javascript typescript java rust golang kotlin swift php ruby sql regex api endpoint refactor
        implement implementation debug debugging unittest pytest segfault variable variables loop array
        script npm pip git docker kubernetes react django flask json yaml html css typeerror valueerror
        nullpointerexception syntax repo repository commit merge lint runtime async await def return struct
        pointer compile library module package import dependency
        """
    ),
    "agentic": words(
        """
        tool tools tool_call tool_use function_call observation execute executing terminal shell bash browse
        browser navigate click screenshot workspace filesystem subagent agent orchestrate mcp invoke
        """
    ),
    "math": words(
        """
        solve equation equations integral derivative prove proof theorem lemma probability calculate compute
        algebra geometry calculus matrix matrices polynomial vector eigenvalue factorial prime primes sum
        product limit series arithmetic fraction fractions triangle circle radius angle logarithm sqrt
        modulo inequality
        """
    ),
    "reasoning": words(
        """
        puzzle riddle logic logical deduce deduction infer inference syllogism paradox brainteaser premise
        premises conclusion valid fallacy
        """
    ),
    "writing": words(
        """
        write essay story poem email letter blog article post draft compose rewrite paraphrase proofread
        edit summarize summarise summary outline speech slogan tagline headline caption lyrics novel chapter
        script tweet bio resume cv
        """
    ),
    "translation": words(
        """
        translate translation translating translated
        """
    ),
    "data": words(
        """
        csv dataset datasets dataframe pandas spreadsheet excel table column columns rows chart plot graph
        statistics statistical regression correlation visualize visualization analyze analysis aggregate
        median mean variance
        """
    ),
    "chat": words(
        """
        hi hello hey thanks thank bye goodnight morning lol haha how's
        """
    ),
}
FAMILY_PATTERNS: dict[str, list[str]] = {
    "coding": [r"代码", r"函数", r"编程", r"报错", r"程序", r"算法", r"编译", r"接口", r"コード", r"関数",
               r"プログラム",
               r"코드", r"함수", r"프로그램", r"\bкод(?:а|е|ом|у|ы)?\b", r"\bфункци\w*", r"\bпрограмм\w*", r"\bc\+\+",
               r"\bc#", r"\bnode\.js\b"],
    "agentic": [r"工具调用", r"调用工具", r"执行命令", r"ツール", r"도구", r"\btool[_ ]?(?:call|use|result)s?\b",
                r"\bfunction[_ ]?call\w*", r"\bcomputer use\b"],
    "math": [r"方程", r"求解", r"证明", r"积分", r"导数", r"概率", r"数学", r"方程式", r"証明", r"確率", r"방정식",
             r"증명", r"확률", r"\bуравнени\w*", r"\bдокаж\w*"],
    "reasoning": [r"谜题", r"逻辑", r"推理题", r"脑筋急转弯", r"パズル", r"論理", r"퍼즐", r"논리",
                  r"\bголоволомк\w*", r"\bwhich of the following\b"],
    "writing": [r"写一(?:篇|首|封|段|个故事)", r"作文", r"文章", r"故事", r"诗", r"邮件", r"润色", r"总结", r"摘要",
                r"書いて", r"作文", r"요약", r"써 ?줘", r"\bнапиши\w*", r"\bescribe\w*", r"\b[ée]cri[st]\b",
                r"\bschreib\w*", r"\bescreva\w*"],
    "translation": [r"翻译", r"译成", r"翻訳", r"번역", r"\bперевед\w*", r"\bпереведи\w*", r"\btradu\w*",
                    r"\bübersetz\w*",
                    r"\binto (?:english|chinese|french|spanish|german|japanese|korean|russian|portuguese)\b"],
    "data": [r"数据", r"表格", r"统计", r"データ", r"데이터", r"\bданны\w*", r"\bdatos\b", r"\bdonn[ée]es\b",
             r"\bdaten\b",
             r"\bdados\b"],
    "chat": [r"你好", r"谢谢", r"こんにちは", r"ありがとう", r"안녕", r"감사", r"\bпривет\b", r"\bспасибо\b",
             r"\bhola\b", r"\bgracias\b", r"\bbonjour\b", r"\bmerci\b", r"\bhallo\b", r"\bdanke\b", r"\bol[aá]\b",
             r"\bobrigad[oa]\b"],
    # English questions ("what ...", "...?") are recognised in code, not here
    "qa": [r"什么", r"为什么", r"怎么", r"如何", r"哪", r"吗", r"何です", r"なぜ", r"무엇", r"왜", r"\bчто\b",
           r"\bпочему\b", r"\bqu[eé]\b", r"\bpor qu[eé]\b", r"\bpourquoi\b", r"\bwarum\b", r"\bwas ist\b",
           r"\bpor que\b"],
}

# --------------------------------------------------------------------------------------------------------
# Language: stopwords for Latin-script languages (distinctive function words; overlaps are fine because
# each language is scored by how many of its own words appear).
# --------------------------------------------------------------------------------------------------------
STOPWORDS: dict[str, frozenset[str]] = {
    "en": words(
        """
        the and is are you of to what this that with for how please your can it in be an was were have has
        do does not will would should could which who when where why my me i we they he she there their from
        about into than then them these those our
        """
    ),
    "es": words(
        """
        el la los las de que y en un una por para con es del cómo qué tu su se no lo al más pero este esta
        son está hay muy también yo mi sobre entre cuando porque hola gracias puedes
        """
    ),
    "fr": words(
        """
        le la les de des du et est un une que qui pour dans en pas vous tu ce cette avec sur au aux je il ne
        ou mais sont être avoir comment quoi pourquoi très aussi bonjour merci peux
        """
    ),
    "de": words(
        """
        der die das und ist nicht ein eine ich du sie zu mit von den dem für auf wie was bitte auch es sich
        sind wir ihr kann kannst oder aber warum wird werden hallo danke über
        """
    ),
    "pt": words(
        """
        o a os as de do da dos das que e é um uma para com não em no na por você como mais seu sua isso esta
        este são está muito também eu meu minha olá obrigado pode
        """
    ),
}

# The most frequent Chinese characters and kana: poor cue anchors, and bigrams of them are no template.
COMMON_CJK = frozenset(
    "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好"
    "都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此"
    "实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真"
    "听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路"
    "期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统"
    "色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该属级近图式吗呢吧啊么"
    "のはにをたがでてとしれさいるもなかすこ"
)

# Tokens whose bigrams say nothing about a template ("of the", "how do"): left out of MinHash, which
# otherwise lets one common pair decide a band for short prompts.
STOP_TOKENS = frozenset().union(*STOPWORDS.values()) | words(
    """
    a i me my you your we our it its to of in on at by for with from as is are was be been do does did can
    could would should will shall may might must have has had not no or and but if then so than that this
    these those there here what which who whom whose when where why how all any some please thanks thank
    s t d m re ll ve write give tell explain make create list show help need want like know get use
    0 _n _q _c
    """
)  # s t d m re ll ve: split contractions; 0 _n _q _c: the skeleton's slot placeholders

# --------------------------------------------------------------------------------------------------------
# Skeleton canonicalisation: light paraphrase should not move a prompt off its template. Filler words are
# dropped and common instruction synonyms folded before the skeleton is hashed and sketched.
# --------------------------------------------------------------------------------------------------------
FILLER = words("please pls plz kindly thanks thank thx cheers hi hello hey dear ok okay a an the lot")
CJK_FILLER = ("麻烦", "谢谢", "您好", "你好", "一下", "请")
_SYNONYM_SETS = """
    write create generate produce compose draft craft
    explain describe clarify
    give provide offer supply
    list enumerate itemize itemise
    short brief concise
    simple plain easy basic straightforward
    tips advice suggestions recommendations pointers hints
    find locate identify spot
    polite courteous
    main key primary principal major
    helpful useful beneficial
    risks dangers hazards pitfalls
    latest newest
    fix repair resolve
    summarize summarise recap condense
    show display
    help assist
    first initially
    error exception
    function method
    """
SYNONYMS: dict[str, str] = {
    word: line.split()[0] for line in _SYNONYM_SETS.strip().splitlines() for word in line.split()[1:]
}
