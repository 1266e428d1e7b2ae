"""Prompt families of people learning together: class exercises, hackathon starter kits, new employees.

`class_exercise` and `hack_starter` hold one exercise (one starter kit) per phrasing: a class or a hackathon
pins one phrasing, so all its students send the same exercise with their own attempt, numbers and wording.
"""

from __future__ import annotations

import random

from app.sim.prompts import vocab as v
from app.sim.prompts.benign import _fill_agent_start, _r
from app.sim.prompts.markup import Family, family

_WORDS = ("Racecar", "Banana", "Education", "AEIOU", "rhythm", "Onomatopoeia", "Queueing", "Mississippi",
          "Umbrella", "Idea", "sky", "Aardvark", "Eerie", "Oboe")
_EXAMPLES = ("coffee", "insulin", "concert tickets", "gasoline", "streaming subscriptions", "bread", "cigarettes",
             "airline tickets", "textbooks", "electricity", "luxury watches", "bus passes")


def _fill_class(rng: random.Random) -> dict[str, str]:
    word = _r(rng, _WORDS)
    right = sum(c in "aeiouAEIOU" for c in word)
    low = sum(c in "aeiou" for c in word)
    n = rng.randint(12, 40)
    return {
        "word": word, "right": str(right), "wrong": str(low if low != right else right + 1),
        "var": _r(rng, ("count", "total", "n", "vowels", "c", "result")), "n": str(n),
        # the students' own answers: right, rounded differently, or one of the usual slips
        "line": str(rng.randint(2, 9)), "mean": _r(rng, ("19", "19.0", "19.00", "18.9", "22.2")),
        "sd": _r(rng, ("6", "6.0", "6.00", "5.55", "5.6", "36")),
        "acc": f"{rng.uniform(0.55, 0.99):.2f}", "example": _r(rng, _EXAMPLES),
        "elast": f"{rng.uniform(0.1, 2.5):.1f}", "t": _r(rng, ("2.04", "2.0", "2", "4.08", "1.96")),
        "h": _r(rng, ("20.4", "20.41", "40.8", "20", "19.6")), "fib": str(rng.choice((30, 35, 40, 50, 100))),
        "name": _r(rng, v.FIRST_NAMES), "sorry": _r(rng, ("", "", "sorry if this is a dumb question, ",
                                                          "I'm stuck, ", "quick question: ")),
    }


CLASS_EXERCISE = family("class_exercise", [
    "{sorry}Exercise 3: write a function count_vowels(s) that returns the number of vowels in s. [[My code|Here's "
    "what I have|My attempt]]:\n\ndef count_vowels(s):\n    {var} = 0\n    for ch in s:\n        if ch in "
    "\"aeiou\":\n            {var} += 1\n    return {var}\n\nIt returns {wrong} for \"{word}\" but the "
    "autograder expects {right}. [[Why?|What's wrong?|Can you give me a hint without the full answer?]]",
    "{sorry}Lab 2: average(grades) should return the mean of a list of grades. Mine crashes with "
    "ZeroDivisionError: division by zero on line {line}. [[How do I handle|What should I do about]] the empty "
    "list case?",
    "{sorry}For the FizzBuzz exercise (print 1 to {n}, Fizz for multiples of 3, Buzz for 5, FizzBuzz for both) "
    "my program prints Fizz for 15 instead of FizzBuzz. [[I check 3 first, then 5, then 15.|My if/elif order "
    "is 3, 5, 15.]] [[Is the order the problem?|What am I missing?]]",
    "{sorry}Problem set 4, question 2: for the data set 12, 15, 15, 18, 21, 22, 30 compute the mean, median and "
    "sample standard deviation. I got mean {mean} and SD {sd}. [[Is that right?|Can you check my work?|Where "
    "did I go wrong?]]",
    "{sorry}SQL exercise: list the 5 customers with the highest total order amount (tables customers and "
    "orders). My query\n\nSELECT name, SUM(amount) FROM customers JOIN orders ON customers.id = "
    "orders.customer_id ORDER BY SUM(amount) DESC LIMIT 5;\n\ngives an error about GROUP BY. [[How do I fix "
    "it?|What does the error mean?]]",
    "{sorry}Econ 101 short answer: explain price elasticity of demand with an example of your choice. My "
    "example is {example} and I said its elasticity is about {elast}. [[Does my reasoning make sense?|Is this a "
    "good example?|Can you give feedback on my argument?]]",
    "{sorry}Physics worksheet 5: a ball is thrown straight up at 20 m/s. How long until it reaches the top and "
    "how high does it go (g = 9.8 m/s^2)? I got t = {t} s and h = {h} m. [[Is that right?|I think my height "
    "is off, can you check?]]",
    "{sorry}ML lab: train a decision tree on the iris data with train_test_split(test_size=0.3, "
    "random_state=42). My accuracy is {acc}, my partner {name} gets something different. [[Why would that "
    "be?|Is {acc} reasonable?]]",
    "{sorry}Homework 6: write a recursive fib(n). Mine works for small n but fib({fib}) never finishes. "
    "[[Why is it so slow?|How do I make it faster without changing the recursion too much?]]",
], _fill_class)


def _fill_class_followup(rng: random.Random) -> dict[str, str]:
    return {"err": _r(rng, v.ERRORS), "line": str(rng.randint(2, 30)), "concept": _r(rng, v.CONCEPTS),
            "n": str(rng.randint(2, 5))}


CLASS_FOLLOWUP = family("class_followup", [
    "ok I changed it but now I get: {err}",
    "Thanks! Can you explain the part on line {line} again? I don't get why it works.",
    "Can you give me {n} more practice problems like this one?",
    "wait so is my answer right or not",
    "What does {concept} have to do with this?",
    "that makes sense. how would I write it without a loop?",
    "My TA said to use a dictionary instead. Why would that be better?",
], _fill_class_followup)


# --- hackathons: every team starts from the organisers' starter kit ---------------------------------------
_FEATURES = ("streaming responses", "a chat history sidebar", "file upload", "user login", "a voice input "
             "button", "citations for each answer", "a dark mode", "rate limiting", "a feedback thumbs-up",
             "image input", "a share link for conversations", "tool calling for the weather API")
_IDEAS = ("a study buddy that quizzes you on lecture notes", "an app that turns receipts into a budget",
          "a bot that summarises our club's Discord", "a recipe planner from what's in your fridge",
          "an accessibility checker for websites", "a tutor for learning sign language vocabulary",
          "a tool that explains legal letters in plain language", "a volunteer-shift scheduler for shelters",
          "a climate-friendly commute planner", "a meeting-notes-to-tasks converter",
          "a plant-care reminder that reads sensor data", "a campus lost-and-found matcher",
          "a flashcard generator for medical students", "a grocery price tracker", "a chore splitter for "
          "roommates", "an interview practice coach", "a museum audio guide", "a bug-report triager for open "
          "source repos", "a travel itinerary builder from emails", "a bedtime story generator with pictures",
          "a tenant-rights helper", "a pitch deck reviewer", "a pet adoption matcher", "a local events digest")
_TRACKS = ("education", "health", "sustainability", "developer tools", "accessibility", "civic tech")


def _fill_hack(rng: random.Random) -> dict[str, str]:
    return {**_fill_agent_start(rng), "feature": _r(rng, _FEATURES), "idea": _r(rng, _IDEAS),
            "track": _r(rng, _TRACKS), "hours": str(rng.randint(2, 30)), "members": str(rng.randint(2, 5))}


HACK_STARTER = family("hack_starter", [
    "[[We're using|We cloned|Our team started from]] the Next.js chat starter kit from the organisers. [[How do we "
    "add|How can we add|Can you add]] {feature} to it? [[Our idea|We're building|Project]]: {idea}.",
    "Starter kit: FastAPI + vector store RAG template. `make dev` [[fails with|crashes with|gives]] {err}. [[How "
    "do we fix it?|What are we missing?|Any idea?]] [[We're building {idea}.|Team of {members}.|]]",
    "Using the Discord bot starter from the hackathon repo, [[make the bot|change the bot so it can|add a command "
    "to]] {idea_verb}. [[Keep the existing /ask command.|Don't break /ask.|]] [[It's for {idea}.|]]",
    "[[We cloned|We're on|Started with]] the Streamlit data-assistant starter. [[Add|How do we add|Help us add]] "
    "{feature} and a page [[that shows|for]] {idea}.",
    "Voice agent starter (Twilio + SDK): the call connects but the agent never answers. [[Logs say|The error "
    "is|Console shows]] {err}. [[Help?|What's wrong?|How do we debug this?]]",
    "Browser extension starter: [[how do we|how can we|what's the best way to]] send the selected text to the API "
    "and show the answer in the popup? [[We're building|Our project is|Idea:]] {idea}.",
], lambda rng: {**_fill_hack(rng), "idea_verb": _r(rng, ("answer questions about the schedule",
                                                         "summarise long threads", "quiz people daily",
                                                         "track who's bringing what", "find a teammate",
                                                         "translate messages", "remind people of deadlines"))},
   tools=True)

HACK_IDEA = family("hack_idea", [
    "We have {hours} hours left. Help us write a 2-minute pitch for {idea}.",
    "Give us 5 project ideas for the {track} track that a team of {members} can build in a weekend.",
    "What's the simplest architecture for {idea}? We have {hours} hours and {members} people.",
    "Write the README intro for our hackathon project: {idea}.",
], _fill_hack)


# --- new employees in their first week ---------------------------------------------------------------------
def _fill_onboard(rng: random.Random) -> dict[str, str]:
    return {**_fill_agent_start(rng), "team": _r(rng, ("payments", "platform", "growth", "data", "mobile",
                                                        "search", "infra", "billing")),
            "system": _r(rng, ("Kubernetes", "Terraform", "Kafka", "Airflow", "dbt", "GitHub Actions",
                               "Bazel", "Datadog"))}


ONBOARD_QUESTION = family("onboard_question", [
    "I just joined the {team} team. Walk me through what {path} does and where it's called from.",
    "How do I run the tests for {path} locally? The README mentions {tool} but it fails with {err}.",
    "Explain our {system} setup in this repo to someone new. Start with {path2}.",
    "What does this CI failure mean: {err}? It's my first PR, touching {path}.",
    "Write me a checklist for my first week on the {team} team: repos to clone, services to understand, "
    "who owns {noun}s.",
    "I'm new here: why would {fn} in {path} use a global {noun} cache instead of passing it in?",
], _fill_onboard, tools=True)


def all_learning() -> dict[str, Family]:
    fams = [CLASS_EXERCISE, CLASS_FOLLOWUP, HACK_STARTER, HACK_IDEA, ONBOARD_QUESTION]
    return {f.name: f for f in fams}
