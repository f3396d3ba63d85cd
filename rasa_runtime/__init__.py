"""How the Rasa server and the action server are started and fenced: loopback by default, secrets
from the environment (never the command line), bounded request bodies, an authenticated action
server, and a lock store that is correct across several Rasa servers."""
