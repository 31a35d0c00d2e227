"""Fixed prompts: `PROMPTS` check every export format, the browser and the tests; `EVERYDAY` are what the report
and the README show each decoding strategy's replies to."""

PROMPTS = [
    "hi! how are you doing today?",
    "what do you like to do for fun?",
    "i just got back from a trip to the beach",
    "do you have any pets?",
    "what kind of music do you listen to?",
    "i'm so tired, i didn't sleep at all last night",
    "have you seen any good movies lately?\nno, i don't really watch movies. what about you?",
    "Ça va? J'adore le café ☕",
]

EVERYDAY = [
    "hi! how are you doing today?",
    "what do you like to do for fun?",
    "do you have any pets?",
    "what kind of music do you listen to?",
    "what did you have for dinner?",
    "i just got back from a trip to the beach",
    "i'm so tired, i didn't sleep at all last night",
    "have you seen any good movies lately?",
    "what do you do for work?",
    "where are you from?",
    "do you like to cook?",
    "what are your plans for the weekend?",
    "i love reading books. do you?",
    "it's raining again today",
    "do you play any sports?",
    "my dog is sick and i'm worried",
    "what's your favorite food?",
    "i just started a new job!",
    "do you have any brothers or sisters?",
    "thanks for chatting with me, bye!",
]
