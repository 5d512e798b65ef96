"""The security suite: each finding of the attack pass, driven as an attacker would."""
