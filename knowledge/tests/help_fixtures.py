"""An uploaded guide with sections and no address of its own: its citations lead to its help
page (knowledge/help_pages.py)."""

FILLER = (
    "Gift cards come in amounts from $10 to $500 and are delivered by e-mail within minutes. "
    "You can add a personal message and choose the day it arrives, up to a year ahead. "
)
GIFT_CARDS = f"""# Gift cards

## Buying a gift card

{FILLER}

Pay with any card we accept; gift cards cannot buy other gift cards.

Business customers can order up to two hundred cards at once from the Business page, each with
its own recipient, and receive one invoice for the whole order.

A gift card bought by mistake can be cancelled within fourteen days if nobody has used it yet;
the amount goes back to the card you paid with.

Printed cards in a gift envelope are available in our stores and ship with any order for free.

## Redeeming a gift card

Enter the sixteen-digit code at checkout under Gift card, then select Apply. The balance pays
for the order first and any rest goes on your card. One order can use up to five gift cards.

Codes are not case sensitive, and spaces between the groups of digits are ignored.

In our stores, show the code on your phone or the printed card at the till; the cashier scans
it and tells you the balance left after the purchase.

A gift card cannot be exchanged for cash, and refunds of orders paid by gift card go back onto
the same code, ready to use again.

## Gift card expiry

Acme gift cards never expire and carry no fees. An unused balance stays on the code for as long
as you like, and you can check it any time under Account, then Gift cards.
""".encode()
