"""Small hand-written word lists for realistic French data (no faker dependency).

Every string here must be encodable in latin-1 *and* mean the same in cp1252: the
ERP export is latin-1, and a reader that guesses cp1252 must not see other characters.
So no 'œ', '€' or typographic quotes (see :func:`check_latin1_safe`).
"""

from __future__ import annotations

# ATC anatomical main groups (first letter of the code), labelled in French.
ATC_CLASSES: dict[str, str] = {
    "A": "A - Voies digestives et métabolisme",
    "B": "B - Sang et organes hématopoïétiques",
    "C": "C - Système cardiovasculaire",
    "D": "D - Médicaments dermatologiques",
    "G": "G - Système génito-urinaire et hormones sexuelles",
    "H": "H - Hormones systémiques",
    "J": "J - Anti-infectieux généraux à usage systémique",
    "L": "L - Antinéoplasiques et immunomodulateurs",
    "M": "M - Muscle et squelette",
    "N": "N - Système nerveux",
    "P": "P - Antiparasitaires, insecticides et répulsifs",
    "R": "R - Système respiratoire",
    "S": "S - Organes sensoriels",
}

# (molecule, ATC code, strengths, dosage forms, cost level in EUR per pack)
MOLECULES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...], float], ...] = (
    ("Paracétamol", "N02BE01", ("500 mg", "1 g"), ("comprimé", "gélule", "comprimé effervescent"), 1.2),
    ("Ibuprofène", "M01AE01", ("200 mg", "400 mg"), ("comprimé pelliculé",), 1.5),
    ("Amoxicilline", "J01CA04", ("500 mg", "1 g"), ("gélule", "poudre pour suspension buvable"), 2.0),
    (
        "Amoxicilline/Acide clavulanique",
        "J01CR02",
        ("1 g/125 mg", "500 mg/62,5 mg"),
        ("comprimé pelliculé", "sachet"),
        3.5,
    ),
    ("Metformine", "A10BA02", ("500 mg", "850 mg", "1000 mg"), ("comprimé pelliculé",), 2.2),
    ("Oméprazole", "A02BC01", ("10 mg", "20 mg"), ("gélule gastro-résistante",), 2.5),
    ("Ésoméprazole", "A02BC05", ("20 mg", "40 mg"), ("comprimé gastro-résistant",), 3.0),
    ("Atorvastatine", "C10AA05", ("10 mg", "20 mg", "40 mg", "80 mg"), ("comprimé pelliculé",), 4.0),
    ("Rosuvastatine", "C10AA07", ("5 mg", "10 mg", "20 mg"), ("comprimé pelliculé",), 4.5),
    ("Amlodipine", "C08CA01", ("5 mg", "10 mg"), ("gélule", "comprimé"), 2.8),
    ("Ramipril", "C09AA05", ("1,25 mg", "2,5 mg", "5 mg", "10 mg"), ("comprimé", "gélule"), 2.6),
    ("Périndopril", "C09AA04", ("2 mg", "4 mg", "8 mg"), ("comprimé sécable",), 3.2),
    ("Bisoprolol", "C07AB07", ("1,25 mg", "2,5 mg", "5 mg", "10 mg"), ("comprimé pelliculé",), 2.4),
    ("Furosémide", "C03CA01", ("20 mg", "40 mg"), ("comprimé sécable", "solution injectable"), 1.8),
    ("Lévothyroxine sodique", "H03AA01", ("25 µg", "50 µg", "75 µg", "100 µg"), ("comprimé sécable",), 1.6),
    ("Prednisolone", "H02AB06", ("5 mg", "20 mg"), ("comprimé orodispersible",), 2.1),
    ("Salbutamol", "R03AC02", ("100 µg/dose",), ("suspension pour inhalation",), 4.2),
    ("Budésonide", "R03BA02", ("200 µg/dose", "400 µg/dose"), ("poudre pour inhalation",), 9.5),
    ("Montélukast", "R03DC03", ("4 mg", "5 mg", "10 mg"), ("comprimé à croquer", "comprimé pelliculé"), 5.5),
    ("Cétirizine", "R06AE07", ("10 mg",), ("comprimé pelliculé",), 1.4),
    ("Desloratadine", "R06AX27", ("5 mg",), ("comprimé pelliculé",), 2.9),
    ("Tramadol", "N02AX02", ("50 mg", "100 mg"), ("gélule", "comprimé à libération prolongée"), 3.4),
    ("Codéine/Paracétamol", "N02AJ06", ("30 mg/500 mg",), ("comprimé",), 2.7),
    (
        "Morphine",
        "N02AA01",
        ("10 mg", "30 mg"),
        ("gélule à libération prolongée", "solution injectable"),
        6.5,
    ),
    ("Sertraline", "N06AB06", ("25 mg", "50 mg"), ("gélule",), 3.8),
    ("Escitalopram", "N06AB10", ("5 mg", "10 mg", "20 mg"), ("comprimé pelliculé sécable",), 4.1),
    ("Paroxétine", "N06AB05", ("20 mg",), ("comprimé pelliculé sécable",), 3.3),
    ("Alprazolam", "N05BA12", ("0,25 mg", "0,5 mg"), ("comprimé sécable",), 1.9),
    ("Zolpidem", "N05CF02", ("10 mg",), ("comprimé pelliculé sécable",), 2.0),
    ("Prégabaline", "N03AX16", ("25 mg", "75 mg", "150 mg"), ("gélule",), 7.0),
    (
        "Lévétiracétam",
        "N03AX14",
        ("250 mg", "500 mg", "1000 mg"),
        ("comprimé pelliculé", "solution buvable"),
        8.5,
    ),
    ("Apixaban", "B01AF02", ("2,5 mg", "5 mg"), ("comprimé pelliculé",), 24.0),
    ("Rivaroxaban", "B01AF01", ("10 mg", "15 mg", "20 mg"), ("comprimé pelliculé",), 26.0),
    ("Clopidogrel", "B01AC04", ("75 mg",), ("comprimé pelliculé",), 4.6),
    (
        "Acide acétylsalicylique",
        "B01AC06",
        ("75 mg", "160 mg"),
        ("poudre pour solution buvable en sachet",),
        1.7,
    ),
    (
        "Énoxaparine sodique",
        "B01AB05",
        ("4000 UI/0,4 ml", "6000 UI/0,6 ml"),
        ("solution injectable en seringue préremplie",),
        18.0,
    ),
    ("Insuline glargine", "A10AE04", ("100 unités/ml",), ("solution injectable en stylo prérempli",), 32.0),
    ("Gliclazide", "A10BB09", ("30 mg", "60 mg"), ("comprimé à libération modifiée",), 2.9),
    ("Sitagliptine", "A10BH01", ("50 mg", "100 mg"), ("comprimé pelliculé",), 21.0),
    (
        "Azithromycine",
        "J01FA10",
        ("250 mg", "500 mg"),
        ("comprimé pelliculé", "poudre pour suspension buvable"),
        5.2,
    ),
    ("Ciprofloxacine", "J01MA02", ("250 mg", "500 mg"), ("comprimé pelliculé",), 4.4),
    ("Doxycycline", "J01AA02", ("100 mg",), ("comprimé sécable",), 3.1),
    ("Fluconazole", "J02AC01", ("50 mg", "150 mg", "200 mg"), ("gélule",), 6.1),
    ("Valaciclovir", "J05AB11", ("500 mg",), ("comprimé pelliculé",), 9.8),
    ("Ceftriaxone", "J01DD04", ("1 g",), ("poudre pour solution injectable",), 7.4),
    ("Tamsulosine", "G04CA02", ("0,4 mg",), ("gélule à libération prolongée",), 3.6),
    ("Sildénafil", "G04BE03", ("25 mg", "50 mg", "100 mg"), ("comprimé pelliculé",), 8.9),
    ("Lévonorgestrel/Éthinylestradiol", "G03AA07", ("0,15 mg/0,03 mg",), ("comprimé enrobé",), 2.5),
    ("Dompéridone", "A03FA03", ("10 mg",), ("comprimé pelliculé",), 1.9),
    ("Phloroglucinol", "A03AX12", ("80 mg",), ("comprimé orodispersible", "lyophilisat oral"), 2.3),
    ("Lopéramide", "A07DA03", ("2 mg",), ("gélule",), 1.6),
    ("Colécalciférol", "A11CC05", ("100 000 UI/2 ml",), ("solution buvable en ampoule",), 2.2),
    ("Diclofénac", "M01AB05", ("50 mg", "75 mg"), ("comprimé gastro-résistant", "gel"), 2.6),
    ("Kétoprofène", "M01AE03", ("100 mg",), ("comprimé à libération prolongée", "gel"), 2.9),
    ("Allopurinol", "M04AA01", ("100 mg", "200 mg", "300 mg"), ("comprimé",), 1.8),
    ("Acide alendronique", "M05BA04", ("70 mg",), ("comprimé",), 5.9),
    (
        "Méthotrexate",
        "L04AX03",
        ("2,5 mg", "10 mg"),
        ("comprimé", "solution injectable en seringue préremplie"),
        14.0,
    ),
    ("Tamoxifène", "L02BA01", ("10 mg", "20 mg"), ("comprimé pelliculé",), 6.3),
    ("Létrozole", "L02BG04", ("2,5 mg",), ("comprimé pelliculé",), 11.0),
    ("Hydroxychloroquine", "P01BA02", ("200 mg",), ("comprimé pelliculé",), 4.9),
    ("Ivermectine", "P02CF01", ("3 mg",), ("comprimé",), 7.8),
    ("Latanoprost", "S01EE01", ("50 µg/ml",), ("collyre en solution",), 8.4),
    ("Timolol", "S01ED01", ("0,25 %", "0,50 %"), ("collyre en solution",), 3.7),
    ("Bétaméthasone", "D07AC01", ("0,05 %",), ("crème", "pommade"), 2.4),
    ("Miconazole", "D01AC02", ("2 %",), ("crème", "poudre pour application cutanée"), 2.8),
)

# Generic laboratories, used only once the plain molecule/strength/form labels run out.
LABS = ("Biogaran", "Sandoz", "Arrow", "Teva", "Viatris", "Zentiva", "EG", "Cristers")

# (site name, city, region, site type): the first three are plants.
SITES = (
    ("Usine de Compiègne", "Compiègne", "Hauts-de-France", "plant"),
    ("Usine de Saint-Étienne-du-Rouvray", "Saint-Étienne-du-Rouvray", "Normandie", "plant"),
    ("Usine de Tours Nord", "Tours", "Centre-Val de Loire", "plant"),
    ("Plateforme logistique de Saint-Priest", "Saint-Priest", "Auvergne-Rhône-Alpes", "distribution_center"),
    ("Plateforme logistique d'Orléans-Saran", "Saran", "Centre-Val de Loire", "distribution_center"),
)

MACHINE_TYPES = ("tablet_press", "blister_line", "granulator", "coater", "hvac")
# Standard motor/nameplate ratings in kW, per machine type.
RATED_POWER_KW: dict[str, tuple[float, ...]] = {
    "tablet_press": (37.0, 45.0, 55.0, 75.0),
    "blister_line": (45.0, 60.0, 75.0, 90.0, 110.0),
    "granulator": (30.0, 37.0, 55.0, 75.0, 90.0),
    "coater": (37.0, 45.0, 55.0, 75.0),
    "hvac": (90.0, 110.0, 132.0, 160.0, 200.0, 250.0),
}
# Packs (or kg for granulators) produced per running hour.
UNITS_PER_HOUR: dict[str, int] = {
    "tablet_press": 9000,
    "blister_line": 6000,
    "granulator": 1800,
    "coater": 3500,
}

# (city, postcode prefix (department), region, phone area digit)
CITIES = (
    ("Paris", "75", "Île-de-France", "1"),
    ("Boulogne-Billancourt", "92", "Île-de-France", "1"),
    ("Versailles", "78", "Île-de-France", "1"),
    ("Créteil", "94", "Île-de-France", "1"),
    ("Lille", "59", "Hauts-de-France", "3"),
    ("Amiens", "80", "Hauts-de-France", "3"),
    ("Reims", "51", "Grand Est", "3"),
    ("Strasbourg", "67", "Grand Est", "3"),
    ("Metz", "57", "Grand Est", "3"),
    ("Nancy", "54", "Grand Est", "3"),
    ("Dijon", "21", "Bourgogne-Franche-Comté", "3"),
    ("Besançon", "25", "Bourgogne-Franche-Comté", "3"),
    ("Rouen", "76", "Normandie", "2"),
    ("Caen", "14", "Normandie", "2"),
    ("Le Havre", "76", "Normandie", "2"),
    ("Rennes", "35", "Bretagne", "2"),
    ("Brest", "29", "Bretagne", "2"),
    ("Nantes", "44", "Pays de la Loire", "2"),
    ("Angers", "49", "Pays de la Loire", "2"),
    ("Le Mans", "72", "Pays de la Loire", "2"),
    ("Tours", "37", "Centre-Val de Loire", "2"),
    ("Orléans", "45", "Centre-Val de Loire", "2"),
    ("Poitiers", "86", "Nouvelle-Aquitaine", "5"),
    ("Bordeaux", "33", "Nouvelle-Aquitaine", "5"),
    ("Limoges", "87", "Nouvelle-Aquitaine", "5"),
    ("Pau", "64", "Nouvelle-Aquitaine", "5"),
    ("Toulouse", "31", "Occitanie", "5"),
    ("Montpellier", "34", "Occitanie", "4"),
    ("Nîmes", "30", "Occitanie", "4"),
    ("Perpignan", "66", "Occitanie", "4"),
    ("Lyon", "69", "Auvergne-Rhône-Alpes", "4"),
    ("Villeurbanne", "69", "Auvergne-Rhône-Alpes", "4"),
    ("Grenoble", "38", "Auvergne-Rhône-Alpes", "4"),
    ("Saint-Étienne", "42", "Auvergne-Rhône-Alpes", "4"),
    ("Clermont-Ferrand", "63", "Auvergne-Rhône-Alpes", "4"),
    ("Annecy", "74", "Auvergne-Rhône-Alpes", "4"),
    ("Marseille", "13", "Provence-Alpes-Côte d'Azur", "4"),
    ("Aix-en-Provence", "13", "Provence-Alpes-Côte d'Azur", "4"),
    ("Nice", "06", "Provence-Alpes-Côte d'Azur", "4"),
    ("Toulon", "83", "Provence-Alpes-Côte d'Azur", "4"),
    ("Avignon", "84", "Provence-Alpes-Côte d'Azur", "4"),
    ("Ajaccio", "2A", "Corse", "4"),
)

FIRST_NAMES = (
    "Camille", "Léa", "Manon", "Chloé", "Inès", "Jade", "Louise", "Zoé", "Élodie", "Amélie",
    "Hélène", "Cécile", "Sophie", "Nathalie", "Isabelle", "Valérie", "Aurélie", "Mélanie",
    "Noémie", "Clémence", "Lucas", "Hugo", "Louis", "Gabriel", "Jules", "Théo", "Nathan",
    "Raphaël", "Arthur", "Mathis", "Julien", "Nicolas", "Sébastien", "Jérôme", "François",
    "Frédéric", "Stéphane", "Benoît", "Thierry", "Éric", "Rémi", "Gaëtan", "Loïc", "Hervé",
)  # fmt: skip
LAST_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
    "Vincent", "Fournier", "Morel", "Girard", "André", "Lefebvre", "Mercier", "Dupont",
    "Lambert", "Bonnet", "François", "Martinez", "Legrand", "Garnier", "Faure", "Rousseau",
    "Blanc", "Guérin", "Muller", "Henry", "Roussel", "Nicolas", "Perrin", "Morin", "Mathieu",
    "Clément", "Gauthier", "Dumont", "Lopez", "Fontaine", "Chevalier", "Robin", "Masson",
    "Sanchez", "Gérard", "Nguyen", "Boyer", "Denis", "Lemaire", "Duval", "Joly", "Gautier",
    "Roger", "Roche", "Roy", "Noël", "Meyer", "Lucas", "Meunier", "Jean", "Pérez", "Marchand",
)  # fmt: skip
STREET_TYPES = ("rue", "avenue", "boulevard", "place", "allée", "chemin", "quai", "impasse")
STREET_NAMES = (
    "de la République", "Victor Hugo", "Jean Jaurès", "du Général de Gaulle", "Pasteur",
    "de la Gare", "des Écoles", "du Moulin", "Gambetta", "Voltaire", "de Verdun",
    "Émile Zola", "Carnot", "des Tilleuls", "de l'Église", "Saint-Exupéry", "Jules Ferry",
    "Anatole France", "du Maréchal Foch", "de la Libération", "des Lilas", "Aristide Briand",
)  # fmt: skip
PHARMACY_NAMES = (
    "Pharmacie du Centre", "Pharmacie de la Gare", "Pharmacie de la Mairie", "Pharmacie du Marché",
    "Pharmacie des Halles", "Pharmacie du Parc", "Pharmacie de l'Hôtel de Ville",
    "Pharmacie Saint-Michel", "Pharmacie du Pont", "Pharmacie des Écoles", "Grande Pharmacie",
    "Pharmacie de la Place", "Pharmacie du Port", "Pharmacie des Arcades",
)  # fmt: skip
HOSPITAL_PATTERNS = (
    "Centre hospitalier de {city}", "CHU de {city}", "Clinique Saint-Joseph - {city}",
    "Clinique du Parc - {city}", "Hôpital privé de {city}", "Polyclinique de {city}",
)  # fmt: skip
WHOLESALER_PATTERNS = (
    "Répartition Pharmaceutique {region}", "Grossiste Santé {region}", "Pharma Distribution {city}",
    "Coopérative Pharmaceutique {region}",
)  # fmt: skip
EMAIL_DOMAINS = ("orange.fr", "wanadoo.fr", "free.fr", "laposte.net", "sfr.fr", "gmail.com")

CARRIERS = ("Geodis", "DHL Supply Chain", "Kuehne+Nagel", "DB Schenker", "CEVA Logistics", "Chronopost")

RECALL_SOURCE = "ANSM - Retraits de lots et rappels de médicaments"
RECALL_REASONS = (
    "Défaut d'étiquetage : dosage erroné sur l'étui",
    "Contamination particulaire détectée lors d'un contrôle",
    "Résultat hors spécification lors de l'étude de stabilité",
    "Défaut d'étanchéité du blister",
    "Notice non conforme à l'AMM en vigueur",
    "Présence d'impuretés de type nitrosamine au-delà du seuil",
    "Erreur de conditionnement : mélange de lots",
    "Défaut de sertissage du flacon",
    "Taux de dissolution non conforme",
)


def check_latin1_safe(text: str) -> None:
    """Raise ValueError unless ``text`` encodes in latin-1 with the same meaning in
    cp1252 (i.e. no C1 control characters U+0080..U+009F)."""
    text.encode("latin-1")  # raises UnicodeEncodeError naming the character
    bad = [c for c in text if 0x80 <= ord(c) <= 0x9F]
    if bad:
        raise ValueError(f"{text!r} holds {bad!r}, which cp1252 reads differently from latin-1")
