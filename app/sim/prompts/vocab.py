"""Word lists the prompt fillers draw from: broad enough that benign prompts rarely repeat by accident."""

from __future__ import annotations

DISHES = (
    "lasagna", "chicken tikka masala", "vegetable curry", "banana bread", "shakshuka", "pad thai", "ramen",
    "beef stew", "mushroom risotto", "fish tacos", "falafel", "sourdough", "paella", "gnocchi", "chili",
    "pancakes", "lentil soup", "bibimbap", "pho", "carbonara", "quiche", "dumplings", "moussaka",
    "tiramisu", "apple pie", "granola", "stir-fried tofu", "jollof rice", "pierogi", "butter chicken",
    "minestrone", "fried rice", "enchiladas", "ratatouille", "goulash", "couscous salad", "miso salmon",
    "burrito bowls", "cheesecake", "focaccia", "hummus", "clam chowder", "kimchi stew", "meatballs",
)
INGREDIENTS = (
    "eggs", "dairy", "gluten", "nuts", "onions", "garlic", "sugar", "soy", "cilantro", "mushrooms",
    "oil", "meat", "butter", "tomatoes", "peppers", "rice", "wheat flour", "salt", "shellfish",
)
APPLIANCES = ("slow cooker", "air fryer", "microwave", "single pan", "rice cooker", "pressure cooker", "grill")
CITIES = (
    "Lisbon", "Kyoto", "Mexico City", "Istanbul", "Reykjavik", "Hanoi", "Cape Town", "Vancouver", "Prague",
    "Buenos Aires", "Marrakech", "Seoul", "Edinburgh", "Copenhagen", "Bangkok", "Oaxaca", "Tbilisi",
    "Montreal", "Porto", "Sydney", "Budapest", "Singapore", "Taipei", "Lima", "Nairobi", "Dubrovnik",
    "Chicago", "New Orleans", "Kraków", "Vienna", "Cusco", "Bali", "Hokkaido", "Sicily", "Tasmania",
)
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
TRAVELLERS = (
    "two adults", "a family with a toddler", "a solo traveller", "my parents in their seventies",
    "a group of five friends", "a couple on a honeymoon", "a wheelchair user", "two teenagers and me",
    "a vegetarian couple", "a photographer", "someone who hates crowds",
)
DOCS = ("an email", "a short note", "a cover letter", "a complaint letter", "a LinkedIn post", "a text message",
        "a thank-you card", "a resignation letter", "a toast", "a product review", "an apology")
RECIPIENTS = ("my landlord", "my manager", "a hiring manager", "my neighbour", "the school principal",
              "a customer", "my team", "an old friend", "the city council", "my insurance company",
              "a professor", "my bank", "a contractor", "the HOA board")
SUBJECTS = (
    "a leaking ceiling", "asking for a raise", "a late delivery", "a noise problem", "switching to part-time",
    "a missed deadline", "a refund for a broken laptop", "planting trees on our street", "a wedding invitation",
    "a scheduling conflict", "rent going up", "a parking dispute", "our quarterly results", "a surprise party",
    "returning borrowed tools", "a volunteer opportunity", "a billing error", "an extension on a project",
)
TONES = ("", " Keep it polite but firm.", " Make it friendly.", " Keep it under 150 words.",
         " Make it sound professional.", " Add a bit of humour.", " Be direct.")
CONCEPTS = (
    "inflation", "compound interest", "photosynthesis", "black holes", "the electoral college", "CRISPR",
    "how vaccines work", "blockchain", "the stock market", "plate tectonics", "quantum entanglement",
    "supply and demand", "the immune system", "machine learning", "climate feedback loops", "mortgages",
    "index funds", "the water cycle", "general relativity", "how airplanes fly", "antibiotic resistance",
    "the placebo effect", "carbon credits", "nuclear fusion", "how GPS works", "credit scores", "tariffs",
    "the Doppler effect", "entropy", "sleep cycles", "how noise-cancelling headphones work", "tides",
)
AUDIENCES = ("I'm 10", "I'm new to this", "I'm a nurse", "I'm a retired engineer", "I'm a high school student",
             "I run a small bakery", "I'm studying for an exam", "I'm explaining it to my kids")
WORKOUTS = ("running", "strength", "yoga", "swimming", "cycling", "bodyweight", "stretching", "hiking")
FIT_GOALS = ("losing weight", "a first 10k", "back pain", "building muscle", "better sleep", "a marathon",
             "staying flexible", "more energy")
FIT_CONSTRAINTS = ("only have 20 minutes a day", "work night shifts", "have a bad knee", "am over 60",
                   "have no equipment", "travel a lot", "am a complete beginner", "have asthma")
PRODUCTS = (
    "a Kindle", "an iPad", "a Chromebook", "a MacBook Air", "a Pixel phone", "a Galaxy phone",
    "an e-bike", "a robot vacuum", "noise-cancelling headphones", "a standing desk", "an air purifier",
    "a heat pump", "a mirrorless camera", "a gaming laptop", "a mechanical keyboard", "a cargo bike",
    "a dash cam", "a smart thermostat", "an espresso machine", "a 3D printer",
)
USES = ("a student", "travel", "photography", "working from home", "a small apartment", "a family of four",
        "gaming", "someone with allergies", "a long commute")
LIFE_TASKS = (
    "fix a running toilet", "get rid of fruit flies", "negotiate a car price", "remove a wine stain",
    "start a vegetable garden", "file taxes as a freelancer", "train a puppy to stop biting",
    "improve my credit score", "clean a cast iron pan", "prepare for a job interview", "learn to juggle",
    "unclog a drain without chemicals", "ask for feedback at work", "make new friends in a new city",
    "organise a small closet", "reduce my electricity bill", "stop procrastinating", "repot a monstera",
    "patch a hole in drywall", "sleep on a plane", "write a budget", "care for a sourdough starter",
)
FORMS = ("poem", "limerick", "short story", "haiku", "song chorus", "bedtime story", "sonnet", "rap verse")
TOPICS_LIGHT = ("my cat", "autumn", "a rainy Monday", "coffee", "the ocean", "moving house", "a lost sock",
                "friendship", "the first day of school", "a lighthouse", "grandma's kitchen", "the moon")
STYLES = ("Dr. Seuss", "a noir detective", "Shakespeare", "a sports commentator", "a pirate",
          "a nature documentary", "Emily Dickinson", "a 1950s radio ad")
LANGUAGES = ("Spanish", "French", "German", "Japanese", "Italian", "Portuguese", "Korean", "Dutch", "Polish")
SENTENCES = (
    "Where is the nearest pharmacy?", "Our meeting has been moved to Thursday.",
    "Thank you for your hospitality.", "The package arrived damaged.", "Could you recommend a good restaurant?",
    "I am allergic to peanuts.", "We will be arriving late tonight.", "How much does the ticket cost?",
    "My flight was cancelled.", "The invoice is attached.", "Happy birthday, I hope you have a great day!",
)
HISTORY = (
    "the fall of the Roman Empire", "the French Revolution", "the Meiji Restoration", "the Black Death",
    "the Cuban Missile Crisis", "the printing press", "the partition of India", "the Dust Bowl",
    "the collapse of the Bronze Age", "the Hanseatic League", "the Marshall Plan", "the Suez Crisis",
    "the Silk Road", "the Industrial Revolution", "the Apollo program", "the 1918 flu",
)
FIRST_NAMES = ("Maya", "Liam", "Noor", "Kenji", "Sofia", "Mateo", "Amara", "Oliver", "Priya", "Lucas", "Zara",
               "Ethan", "Aisha", "Hugo", "Ines", "Tomás", "Yuki", "Leila", "Omar", "Chloe", "Ravi", "Greta")
SURNAMES = ("Okafor", "Lindqvist", "Tanaka", "Moreau", "Haddad", "Kowalski", "Silva", "Nguyen", "Schmidt",
            "Rossi", "Patel", "O'Brien", "Fischer", "Kim", "Garcia", "Novak", "Dubois", "Ivanova")
PERSONAS = (
    "", "", "", "", "I'm a teacher. ", "Quick question. ", "For a school project: ", "I'm in a hurry. ",
    "My friend and I are arguing about this. ", "I work in retail. ", "Hi! ", "Sorry if this is basic. ",
)
SUFFIXES = ("", "", "", "", " Use bullet points.", " Keep it short.", " Thanks!", " Please explain why.",
            " Give me three options.", " What would you recommend?")

# --- code ---------------------------------------------------------------------------------------------
VERBS = ("parse", "load", "validate", "render", "sync", "merge", "fetch", "compute", "build", "resolve",
         "normalize", "export", "import", "cache", "retry", "schedule", "serialize", "index", "encode", "flush")
NOUNS = ("invoice", "user", "session", "order", "config", "token", "payment", "report", "event", "schema",
         "metric", "ticket", "profile", "webhook", "manifest", "batch", "query", "snapshot", "cursor", "ledger",
         "shipment", "tenant", "artifact", "channel", "quota")
LANGS_CODE = ("Python", "TypeScript", "Go", "Rust", "Java", "Kotlin", "C#", "Ruby", "PHP", "Swift", "Scala")
EXT = {"Python": "py", "TypeScript": "ts", "Go": "go", "Rust": "rs", "Java": "java", "Kotlin": "kt",
       "C#": "cs", "Ruby": "rb", "PHP": "php", "Swift": "swift", "Scala": "scala"}
DIRS = ("src", "lib", "app", "pkg", "internal", "services", "core", "api", "server", "cmd", "modules")
ERRORS = (
    "KeyError: 'id'", "TypeError: 'NoneType' object is not subscriptable", "AssertionError: expected 3, got 2",
    "panic: runtime error: index out of range", "NullPointerException", "timeout after 30000 ms",
    "connection refused", "ValueError: invalid literal for int()", "segmentation fault",
    "error[E0382]: borrow of moved value", "undefined is not a function", "deadlock detected",
    "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff", "403 Forbidden", "off-by-one in pagination",
)
FRAMEWORKS = ("Django", "FastAPI", "React", "Next.js", "Spring Boot", "Express", "Rails", "Flask", "gin",
              "Axum", "Laravel", "Vue", "SvelteKit", "NestJS", "Phoenix")
TOOLS_CLI = ("pytest", "npm test", "go test ./...", "cargo test", "mvn test", "ruff check", "eslint", "tsc",
             "make build", "docker compose up", "git diff", "kubectl get pods")
DATA_ITEMS = ("sales", "sensor readings", "web traffic", "churn", "latency", "inventory", "survey responses",
              "energy usage", "ad spend", "support tickets", "claims", "shipments")

# --- sensitive topics (journalists, scholars; also what censorship-rewrite harvesting targets) -----------
SENSITIVE = (
    "the 1989 Tiananmen Square protests", "the detention camps in Xinjiang", "Taiwan's political status",
    "the 2019 Hong Kong protests", "press freedom in Russia", "the war in Ukraine", "the Gaza conflict",
    "election disinformation networks", "the Cultural Revolution", "Tibetan autonomy", "the Falun Gong ban",
    "internet censorship in Iran", "the Armenian genocide", "police violence in the United States",
    "the Rohingya crisis", "the Great Chinese Famine", "the 2022 COVID lockdown protests in Shanghai",
    "the arrest of Jimmy Lai", "surveillance of journalists with spyware", "the Uyghur diaspora",
)
OUTLETS = ("Reuters", "the BBC", "Xinhua", "RT", "Al Jazeera", "the New York Times", "Caixin", "Le Monde",
           "NHK", "Deutsche Welle", "the Global Times", "Nikkei Asia")

# --- Chinese ---------------------------------------------------------------------------------------------
ZH_DISHES = ("红烧肉", "麻婆豆腐", "宫保鸡丁", "番茄炒蛋", "酸菜鱼", "水煮牛肉", "糖醋排骨", "清蒸鲈鱼", "葱油饼",
             "小笼包", "牛肉面", "蛋炒饭", "可乐鸡翅", "地三鲜", "回锅肉", "干煸四季豆")
ZH_CITIES = ("新加坡", "台北", "吉隆坡", "东京", "首尔", "悉尼", "温哥华", "伦敦", "旧金山", "清迈", "大阪",
             "墨尔本", "槟城", "高雄", "京都", "多伦多")
ZH_CONCEPTS = ("通货膨胀", "复利", "光合作用", "黑洞", "区块链", "机器学习", "量子纠缠", "供求关系", "免疫系统",
               "相对论", "碳中和", "利率", "指数基金", "睡眠周期", "气候变化", "半导体")
ZH_TASKS = ("写一封请假邮件给老板", "准备面试的自我介绍", "给孩子讲一个睡前故事", "规划一个月的预算",
            "写一段产品介绍", "给房东写一封关于维修的信", "整理会议纪要", "写一份辞职信", "给客户写道歉信",
            "写生日祝福", "写一篇旅行游记的开头", "改写一段简历")
ZH_ROLES = ("老板", "同事", "老师", "客户", "房东", "朋友", "家长", "学生")

# --- rubric / grading ------------------------------------------------------------------------------------
CRITERIA = ("correctness", "completeness", "clarity", "helpfulness", "harmlessness", "concision",
            "faithfulness to the source", "reasoning quality", "code quality", "tone", "instruction following",
            "factual accuracy", "formatting")
